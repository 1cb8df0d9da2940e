// See include/segment_jpeg.h. Every function that calls libjpeg sets its own setjmp first; the error manager's
// handlers longjmp back to it, so libjpeg's non-returning error path ends in a return code here.
#include "segment_jpeg.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>

typedef struct {
    struct jpeg_error_mgr pub;          // first: libjpeg hands the handlers a pointer to it
    struct jpeg_progress_mgr progress;
    jmp_buf escape;
    int max_scans;
    char message[256];
} guarded_errors;

static void fail_with_libjpeg_message(j_common_ptr cinfo) {
    guarded_errors *e = (guarded_errors *)cinfo->err;
    char text[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, text);
    snprintf(e->message, sizeof e->message, "%s", text);
    longjmp(e->escape, 1);
}

// libjpeg calls error_exit for errors; it must not return.
static void on_error(j_common_ptr cinfo) { fail_with_libjpeg_message(cinfo); }

// Level -1 is a warning: the data is corrupt or truncated and libjpeg would carry on with gray filling, so it fails
// the decode. Levels >= 0 are trace messages and are dropped.
static void on_message(j_common_ptr cinfo, int level) {
    if (level < 0) fail_with_libjpeg_message(cinfo);
}

// Called between scans and passes; refuses a file once it has started more scans than allowed.
static void on_progress(j_common_ptr cinfo) {
    if (!cinfo->is_decompressor) return;
    guarded_errors *e = (guarded_errors *)cinfo->err;
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (e->max_scans > 0 && d->input_scan_number > e->max_scans) {
        snprintf(e->message, sizeof e->message, "it has more than %d scans (a progressive file needs about 10)",
                 e->max_scans);
        longjmp(e->escape, 1);
    }
}

static void install(struct jpeg_decompress_struct *cinfo, guarded_errors *e, int max_scans) {
    memset(e, 0, sizeof *e);
    cinfo->err = jpeg_std_error(&e->pub);
    e->pub.error_exit = on_error;
    e->pub.emit_message = on_message;
    e->max_scans = max_scans;
}

static void describe(const struct jpeg_decompress_struct *cinfo, segment_jpeg_info *info) {
    info->width = (int)cinfo->image_width;
    info->height = (int)cinfo->image_height;
    info->components = cinfo->num_components;
    info->progressive = cinfo->progressive_mode ? 1 : 0;
    info->arithmetic = cinfo->arith_code ? 1 : 0;
    switch (cinfo->jpeg_color_space) {
    case JCS_GRAYSCALE: info->color_space = SEGMENT_JPEG_GRAY; info->output_channels = 1; break;
    case JCS_YCbCr: info->color_space = SEGMENT_JPEG_YCBCR; info->output_channels = 3; break;
    case JCS_RGB: info->color_space = SEGMENT_JPEG_RGB; info->output_channels = 3; break;
    case JCS_CMYK: info->color_space = SEGMENT_JPEG_CMYK; info->output_channels = 0; break;
    case JCS_YCCK: info->color_space = SEGMENT_JPEG_YCCK; info->output_channels = 0; break;
    default: info->color_space = SEGMENT_JPEG_OTHER; info->output_channels = 0; break;
    }
    // Blocks per component: ceil(width * h / (8 * max_h)) x ceil(height * v / (8 * max_v)).
    long long blocks = 0;
    for (int c = 0; c < cinfo->num_components; c++) {
        const jpeg_component_info *k = &cinfo->comp_info[c];
        long long w = ((long long)cinfo->image_width * k->h_samp_factor + 8LL * cinfo->max_h_samp_factor - 1)
                      / (8LL * cinfo->max_h_samp_factor);
        long long h = ((long long)cinfo->image_height * k->v_samp_factor + 8LL * cinfo->max_v_samp_factor - 1)
                      / (8LL * cinfo->max_v_samp_factor);
        blocks += w * h;
    }
    info->blocks = blocks;
}

int segment_jpeg_read_header(const unsigned char *data, size_t size, segment_jpeg_info *info) {
    memset(info, 0, sizeof *info);
    struct jpeg_decompress_struct cinfo;
    guarded_errors errors;
    install(&cinfo, &errors, 0);
    if (setjmp(errors.escape)) {
        snprintf(info->message, sizeof info->message, "%s", errors.message);
        jpeg_destroy_decompress(&cinfo);
        return SEGMENT_JPEG_ERROR;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    describe(&cinfo, info);
    jpeg_destroy_decompress(&cinfo);
    return SEGMENT_JPEG_OK;
}

int segment_jpeg_decode(const unsigned char *data, size_t size, unsigned char *pixels, size_t capacity,
                        int max_scans, long max_memory, segment_jpeg_info *info) {
    memset(info, 0, sizeof *info);
    struct jpeg_decompress_struct cinfo;
    guarded_errors errors;
    install(&cinfo, &errors, max_scans);
    if (setjmp(errors.escape)) {
        snprintf(info->message, sizeof info->message, "%s", errors.message);
        jpeg_destroy_decompress(&cinfo);
        return SEGMENT_JPEG_ERROR;
    }
    jpeg_create_decompress(&cinfo);
    if (max_memory > 0) cinfo.mem->max_memory_to_use = max_memory;
    errors.progress.progress_monitor = on_progress;
    cinfo.progress = &errors.progress;
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    describe(&cinfo, info);
    if (info->output_channels == 0) {
        snprintf(info->message, sizeof info->message, "unsupported colour space");
        jpeg_destroy_decompress(&cinfo);
        return SEGMENT_JPEG_UNSUPPORTED;
    }
    size_t row = (size_t)info->width * (size_t)info->output_channels;
    if (capacity != row * (size_t)info->height) {
        snprintf(info->message, sizeof info->message, "buffer of %zu bytes for %d x %d x %d samples", capacity,
                 info->width, info->height, info->output_channels);
        jpeg_destroy_decompress(&cinfo);
        return SEGMENT_JPEG_BAD_BUFFER;
    }
    cinfo.out_color_space = info->output_channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;
    cinfo.do_block_smoothing = TRUE;
    cinfo.quantize_colors = FALSE;
    cinfo.scale_num = 1;
    cinfo.scale_denom = 1;
    jpeg_start_decompress(&cinfo);
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW rows[1] = { pixels + row * cinfo.output_scanline };
        jpeg_read_scanlines(&cinfo, rows, 1);
    }
    jpeg_finish_decompress(&cinfo);
    info->scans = cinfo.input_scan_number;
    jpeg_destroy_decompress(&cinfo);
    return SEGMENT_JPEG_OK;
}
