// JPEG decoding through libjpeg(-turbo), behind a call that returns an error code instead of longjmp-ing.
//
// libjpeg reports every error (and, through emit_message, every warning) by calling a handler that must not
// return; the handler here longjmps back into the C function that called libjpeg, which then returns
// SEGMENT_JPEG_ERROR with libjpeg's message. No longjmp ever crosses a Swift frame: each function below sets its
// own setjmp and calls libjpeg only below it.
#ifndef SEGMENT_JPEG_H
#define SEGMENT_JPEG_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    SEGMENT_JPEG_OK = 0,
    SEGMENT_JPEG_ERROR = 1,        // libjpeg refused the data (message says why)
    SEGMENT_JPEG_UNSUPPORTED = 2,  // a colour space this reader does not convert (CMYK, YCCK, other)
    SEGMENT_JPEG_BAD_BUFFER = 3,   // the caller's buffer does not match the image
};

// The colour space the file declares (libjpeg's guess from its components and JFIF / Adobe markers).
enum {
    SEGMENT_JPEG_GRAY = 1,
    SEGMENT_JPEG_YCBCR = 2,
    SEGMENT_JPEG_RGB = 3,
    SEGMENT_JPEG_CMYK = 4,
    SEGMENT_JPEG_YCCK = 5,
    SEGMENT_JPEG_OTHER = 6,
};

typedef struct {
    int width, height;          // as stored, before any EXIF orientation
    int components;             // components in the file (1, 3 or 4)
    int color_space;            // SEGMENT_JPEG_GRAY ...
    int output_channels;        // what decoding hands out: 1 (gray) or 3 (RGB); 0 when unsupported
    int progressive;            // 1 for a progressive file
    int arithmetic;             // 1 for arithmetic entropy coding (else Huffman)
    long long blocks;           // 8x8 blocks of all components together: every Huffman-coded block takes >= 1 bit
    int scans;                  // scans read (after decoding)
    char message[256];          // libjpeg's message (or ours) when a call fails
} segment_jpeg_info;

// Reads the header (up to the first scan) of the `size` bytes at `data` into `info`.
int segment_jpeg_read_header(const unsigned char *data, size_t size, segment_jpeg_info *info);

// Decodes the image into `pixels`: (height, width, output_channels) bytes, row-major, `capacity` bytes available
// (must be exactly that many). Decoder settings, libjpeg's defaults spelt out (Pillow decodes with the same):
// ISLOW integer DCT, fancy (triangle) chroma upsampling, block smoothing on (it only acts on progressive files
// that leave coefficients unrefined), full scale; RGB out for YCbCr and RGB files, gray for gray files.
// A file with more than `max_scans` scans is refused (a hostile progressive file can hold many thousands of
// scans, each a full pass over the coefficients); `max_memory` caps libjpeg's own allocations (0: no cap).
// Every libjpeg warning (truncated data, corrupt entropy data, extraneous bytes) fails the call.
int segment_jpeg_decode(const unsigned char *data, size_t size, unsigned char *pixels, size_t capacity,
                        int max_scans, long max_memory, segment_jpeg_info *info);

#ifdef __cplusplus
}
#endif

#endif
