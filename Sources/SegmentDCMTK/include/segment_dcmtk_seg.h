// A C interface to writing a DICOM Segmentation (BINARY) with DCMTK's dcmseg, for SegmentDICOM's SegWriter. As with
// segment_dcmtk.h, every C++ exception and OFCondition stays on the C++ side and comes back as a return code with a
// message.
#ifndef SEGMENT_DCMTK_SEG_H
#define SEGMENT_DCMTK_SEG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// A coded concept (Code Sequence Macro): CodeValue, CodingSchemeDesignator, CodeMeaning.
typedef struct {
    const char *value;
    const char *scheme;
    const char *meaning;
} sdcm_code;

/// One segment: the voxels of `labels` equal to `label` (1...255).
typedef struct {
    uint8_t label;
    const char *name;            // SegmentLabel (LO, at most 64 characters)
    sdcm_code category;          // SegmentedPropertyCategoryCodeSequence
    sdcm_code type;              // SegmentedPropertyTypeCodeSequence
    int has_cielab;              // 0: no RecommendedDisplayCIELabValue
    uint16_t cielab[3];          // DICOM-scaled L*, a*, b* (0...65535)
} sdcm_seg_segment;

/// One source frame: the slice of the source series a SEG frame is derived from.
typedef struct {
    const char *sop_class_uid;
    const char *sop_instance_uid;
    unsigned frame_number;       // 1-based frame of a multi-frame source; 0 for a single-frame source
    double position[3];          // ImagePositionPatient of that frame (LPS, mm)
} sdcm_seg_source;

typedef struct {
    unsigned rows, columns;
    double pixel_spacing[2];     // between rows, between columns (mm), as PixelSpacing
    double slice_thickness;      // mm
    double orientation[6];       // ImageOrientationPatient
    const char *first_source_path;   // supplies the patient, general study and frame of reference modules
    const char *series_description;
    const char *algorithm_name;      // "segment"
    const char *algorithm_version;
    const char *model_name;
    const char *model_checksum;
} sdcm_seg_params;

/// What was written.
typedef struct {
    char series_instance_uid[65];
    char sop_instance_uid[65];
    size_t frames;
} sdcm_seg_result;

/// Return codes of sdcm_write_seg.
enum {
    SDCM_SEG_OK = 0,
    SDCM_SEG_BAD_SOURCE = -1,   // the first source file cannot be read, or lacks an attribute a SEG must copy
    SDCM_SEG_BAD_REQUEST = -2,  // the arguments do not describe a valid SEG (a label out of range, a bad code, ...)
    SDCM_SEG_WRITE = -3,        // DCMTK could not build or write the file
};

/// Writes a BINARY DICOM Segmentation of `labels` ([slices][rows][columns], columns fastest; slice k is the frame of
/// sources[k]) to `out_path`: one segment per entry of `segments`, one frame per (segment, slice) holding at least one
/// voxel of that segment; a segment with no voxel at all gets one empty frame on slice 0 (every segment needs a
/// frame). Returns SDCM_SEG_OK or a negative code with the reason in `err`.
int sdcm_write_seg(const sdcm_seg_params *params, const sdcm_seg_source *sources, size_t source_count,
                   const sdcm_seg_segment *segments, size_t segment_count, const uint8_t *labels,
                   const char *out_path, sdcm_seg_result *result, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
