// A C interface to the parts of DCMTK segment uses: read a DICOM file's attributes (also inside the functional
// groups of multi-frame objects), decode its pixel data (DCMTK's JPEG, JPEG-LS and RLE decoders), and write a DICOM
// Segmentation (dcmseg). DCMTK is C++: every exception and OFCondition stays on the C++ side and comes back as a
// return code with a message, so nothing unwinds through Swift.
#ifndef SEGMENT_DCMTK_H
#define SEGMENT_DCMTK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// A tag as (group << 16) | element, e.g. 0x0020000E for SeriesInstanceUID.
typedef uint32_t sdcm_tag;

/// An opened DICOM file: its dataset and file meta information. Values over 4 KiB (pixel data) are read from the
/// file only when asked for.
typedef struct sdcm_file sdcm_file;

/// True when the file starts with the 128-byte preamble and "DICM" (a DICOM Part 10 file). Reads 132 bytes.
int sdcm_is_part10(const char *path);

/// Opens `path` as a DICOM Part 10 file. NULL on failure, with the reason in `err` (NUL-terminated, `errlen` bytes).
sdcm_file *sdcm_open(const char *path, char *err, size_t errlen);
void sdcm_close(sdcm_file *file);

/// Return codes of the value getters.
enum {
    SDCM_OK = 0,
    SDCM_ABSENT = -1,      // no such attribute, or it is empty
    SDCM_BAD_VALUE = -2,   // present but not of a usable kind (not a number, index past the values, ...)
};

/// The whole value of a string-like attribute (all values, joined by backslashes as stored), trailing spaces removed,
/// truncated to `outlen` - 1 bytes. Looks in the dataset, then (for group 0002) in the file meta information.
int sdcm_string(const sdcm_file *file, sdcm_tag tag, char *out, size_t outlen);

/// Value `index` of a numeric attribute (US, SS, UL, SL, IS, DS, FL, FD) as a double.
int sdcm_number(const sdcm_file *file, sdcm_tag tag, unsigned index, double *out);

/// 1 when the dataset holds attribute `tag` at its top level (even empty, even a sequence or pixel data), else 0.
int sdcm_has(const sdcm_file *file, sdcm_tag tag);

/// Number of values of an attribute (0 when absent).
int sdcm_value_count(const sdcm_file *file, sdcm_tag tag);

/// For multi-frame objects: value `index` of numeric attribute `tag` inside the functional group macro `group` (a
/// sequence tag such as PlanePositionSequence) of frame `frame` (0-based): the per-frame functional groups first, then
/// the shared ones, as the standard resolves them.
int sdcm_frame_number(const sdcm_file *file, unsigned frame, sdcm_tag group, sdcm_tag tag, unsigned index, double *out);

/// The stored pixel values of every frame, frames one after another, each row-major (columns fastest), as signed
/// 32-bit integers: the bits BitsStored below HighBit, sign-extended when PixelRepresentation is 1. Decompresses
/// JPEG baseline/extended/lossless, JPEG-LS and RLE. `count` must be Rows * Columns * NumberOfFrames.
/// Returns 0, or -1 with the reason in `err`.
int sdcm_pixels(sdcm_file *file, int32_t *out, size_t count, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
