// Writing a BINARY DICOM Segmentation through DCMTK's dcmseg (the interface is in include/segment_dcmtk_seg.h).
#include "segment_dcmtk_seg.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>
#include <dcmtk/dcmfg/fgderimg.h>
#include <dcmtk/dcmfg/fgfracon.h>
#include <dcmtk/dcmfg/fgpixmsr.h>
#include <dcmtk/dcmfg/fgplanor.h>
#include <dcmtk/dcmfg/fgplanpo.h>
#include <dcmtk/dcmiod/iodmacro.h>
#include <dcmtk/dcmseg/segdoc.h>
#include <dcmtk/dcmseg/segment.h>
#include <dcmtk/oflog/oflog.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// A failure with the return code it maps to; thrown inside sdcm_write_seg only, caught at its boundary.
struct Failure {
    int code;
    std::string message;
};

void check(const OFCondition &c, const std::string &what) {
    if (c.bad()) throw Failure{SDCM_SEG_WRITE, what + ": " + c.text()};
}

std::string str(const char *s) { return s == nullptr ? std::string() : std::string(s); }

// A decimal string (DS) of at most 16 characters, as precise as fits: DS values longer than 16 bytes are invalid.
std::string ds(double v) {
    if (!std::isfinite(v)) throw Failure{SDCM_SEG_BAD_REQUEST, "a position, spacing or orientation value is not finite"};
    if (v == 0) return "0";
    char buf[64];
    for (int digits = 16; digits >= 1; digits--) {
        std::snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (std::strlen(buf) <= 16) return buf;
    }
    throw Failure{SDCM_SEG_BAD_REQUEST, "the value " + std::to_string(v) + " does not fit a DICOM decimal string"};
}

CodeSequenceMacro code(const sdcm_code &c, const std::string &what) {
    std::string value = str(c.value), scheme = str(c.scheme), meaning = str(c.meaning);
    if (value.empty() || scheme.empty() || meaning.empty())
        throw Failure{SDCM_SEG_BAD_REQUEST, what + " needs a code value, a coding scheme and a meaning"};
    if (value.size() > 16 || scheme.size() > 16 || meaning.size() > 64)
        throw Failure{SDCM_SEG_BAD_REQUEST, what + " (" + scheme + " " + value + " \"" + meaning +
                                                "\"): a code value and scheme have at most 16 characters, a meaning at most 64"};
    return CodeSequenceMacro(value.c_str(), scheme.c_str(), meaning.c_str());
}

std::string newUID(const char *root) {
    char uid[100];
    dcmGenerateUniqueIdentifier(uid, root);
    return uid;
}

std::string truncated(const std::string &s, size_t n) { return s.size() <= n ? s : s.substr(0, n); }

void write(const sdcm_seg_params &p, const sdcm_seg_source *sources, size_t sourceCount,
           const sdcm_seg_segment *segments, size_t segmentCount, const uint8_t *labels, const char *outPath,
           sdcm_seg_result &result) {
    if (p.rows == 0 || p.columns == 0 || p.rows > 65535 || p.columns > 65535)
        throw Failure{SDCM_SEG_BAD_REQUEST, "rows and columns must be 1...65535"};
    if (sourceCount == 0) throw Failure{SDCM_SEG_BAD_REQUEST, "a SEG needs at least one source frame"};
    if (segmentCount == 0 || segmentCount > 255) throw Failure{SDCM_SEG_BAD_REQUEST, "a SEG needs 1...255 segments"};
    std::set<int> seen;
    for (size_t s = 0; s < segmentCount; s++) {
        if (segments[s].label == 0) throw Failure{SDCM_SEG_BAD_REQUEST, "label 0 is the background, not a segment"};
        if (!seen.insert(segments[s].label).second)
            throw Failure{SDCM_SEG_BAD_REQUEST, "label " + std::to_string(segments[s].label) + " is described twice"};
    }
    for (size_t k = 0; k < sourceCount; k++) {
        if (str(sources[k].sop_class_uid).empty() || str(sources[k].sop_instance_uid).empty())
            throw Failure{SDCM_SEG_BAD_REQUEST, "source frame " + std::to_string(k) + " has no SOP class or instance UID"};
        if (sources[k].frame_number > 65535)
            throw Failure{SDCM_SEG_BAD_REQUEST, "source frame " + std::to_string(k) + " has frame number above 65535"};
    }

    // The source's patient, general study and frame of reference modules are copied from its first file.
    DcmFileFormat source;
    OFCondition loaded = source.loadFile(OFFilename(p.first_source_path), EXS_Unknown, EGL_noChange, 4096, ERM_fileOnly);
    if (loaded.bad())
        throw Failure{SDCM_SEG_BAD_SOURCE, str(p.first_source_path) + " cannot be read: " + loaded.text()};
    DcmDataset &sourceData = *source.getDataset();
    OFString sourceSeries, frameOfReference;
    if (sourceData.findAndGetOFString(DCM_SeriesInstanceUID, sourceSeries).bad() || sourceSeries.empty())
        throw Failure{SDCM_SEG_BAD_SOURCE, str(p.first_source_path) + " lacks SeriesInstanceUID, which the SEG must reference"};
    // Without a frame of reference the SEG's plane positions would relate to nothing: a SEG of a series without one
    // is refused rather than given an invented frame of reference.
    if (sourceData.findAndGetOFString(DCM_FrameOfReferenceUID, frameOfReference).bad() || frameOfReference.empty())
        throw Failure{SDCM_SEG_BAD_SOURCE, str(p.first_source_path) +
                                               " lacks FrameOfReferenceUID, which a SEG placed in patient space must share with its source"};
    OFString study;
    if (sourceData.findAndGetOFString(DCM_StudyInstanceUID, study).bad() || study.empty())
        throw Failure{SDCM_SEG_BAD_SOURCE, str(p.first_source_path) + " lacks StudyInstanceUID"};

    const std::string version = str(p.algorithm_version).empty() ? "unknown" : str(p.algorithm_version);
    const std::string modelName = str(p.model_name).empty() ? "model" : str(p.model_name);
    IODGeneralEquipmentModule::EquipmentInfo equipment(str(p.algorithm_name).c_str(), truncated(modelName, 64).c_str(),
                                                       truncated(str(p.model_checksum), 64).c_str(), version.c_str());
    ContentIdentificationMacro identification;
    check(identification.setInstanceNumber("1"), "InstanceNumber");
    check(identification.setContentLabel("SEGMENTATION"), "ContentLabel");
    check(identification.setContentDescription(truncated(str(p.series_description), 64).c_str()), "ContentDescription");

    DcmSegmentation *created = nullptr;
    check(DcmSegmentation::createBinarySegmentation(created, Uint16(p.rows), Uint16(p.columns), equipment, identification),
          "creating the segmentation");
    std::unique_ptr<DcmSegmentation> seg(created);
    check(seg->importHierarchy(sourceData, OFTrue, OFTrue, OFTrue, OFFalse), "copying the patient, study and frame of reference modules");

    result.frames = 0;
    const std::string seriesUID = newUID(SITE_SERIES_UID_ROOT), instanceUID = newUID(SITE_INSTANCE_UID_ROOT);
    check(seg->getSeries().setSeriesInstanceUID(seriesUID.c_str()), "SeriesInstanceUID");
    check(seg->getSOPCommon().setSOPInstanceUID(instanceUID.c_str()), "SOPInstanceUID");
    check(seg->getSeries().setSeriesNumber("901"), "SeriesNumber");
    if (!str(p.series_description).empty())
        check(seg->getSeries().setSeriesDescription(truncated(str(p.series_description), 64).c_str()), "SeriesDescription");
    OFString today, now;
    DcmDate::getCurrentDate(today);
    DcmTime::getCurrentTime(now);
    check(seg->getSeries().setSeriesDate(today), "SeriesDate");
    check(seg->getSeries().setSeriesTime(now), "SeriesTime");
    check(seg->getGeneralImage().setContentDate(today), "ContentDate");
    check(seg->getGeneralImage().setContentTime(now), "ContentTime");

    // Frames are indexed by (segment, position): a viewer sorts them into one stack per segment.
    const std::string dimensionUID = newUID(SITE_INSTANCE_UID_ROOT);
    IODMultiframeDimensionModule &dimensions = seg->getDimensions();
    check(dimensions.addDimensionIndex(DCM_ReferencedSegmentNumber, dimensionUID.c_str(), DCM_SegmentIdentificationSequence,
                                       "ReferencedSegmentNumber"), "the segment dimension");
    check(dimensions.addDimensionIndex(DCM_ImagePositionPatient, dimensionUID.c_str(), DCM_PlanePositionSequence,
                                       "ImagePositionPatient"), "the position dimension");

    // Shared: the source's orientation and pixel measures (the SEG has the source's grid).
    std::unique_ptr<FGPlaneOrientationPatient> orientation(FGPlaneOrientationPatient::createMinimal(
        ds(p.orientation[0]).c_str(), ds(p.orientation[1]).c_str(), ds(p.orientation[2]).c_str(),
        ds(p.orientation[3]).c_str(), ds(p.orientation[4]).c_str(), ds(p.orientation[5]).c_str()));
    if (!orientation) throw Failure{SDCM_SEG_BAD_REQUEST, "ImageOrientationPatient is not valid"};
    check(seg->addForAllFrames(*orientation), "PlaneOrientationSequence");
    FGPixelMeasures measures;
    check(measures.setPixelSpacing((ds(p.pixel_spacing[0]) + "\\" + ds(p.pixel_spacing[1])).c_str()), "PixelSpacing");
    check(measures.setSliceThickness(ds(p.slice_thickness).c_str()), "SliceThickness");
    check(seg->addForAllFrames(measures), "PixelMeasuresSequence");

    // Segments, numbered 1... in the order given.
    std::vector<Uint16> segmentNumbers;
    for (size_t s = 0; s < segmentCount; s++) {
        const sdcm_seg_segment &d = segments[s];
        const std::string what = "segment " + std::to_string(d.label);
        std::string name = truncated(str(d.name), 64);
        if (name.empty()) name = str(d.type.meaning);
        DcmSegment *segment = nullptr;
        const std::string algorithmName = truncated(str(p.algorithm_name) + " " + modelName, 64);
        check(DcmSegment::create(segment, name.c_str(), code(d.category, what + "'s category"), code(d.type, what + "'s type"),
                                 DcmSegTypes::SAT_AUTOMATIC, algorithmName.c_str()),
              what);
        std::unique_ptr<DcmSegment> owned(segment);
        AlgorithmIdentificationMacro algorithm;
        // CID 7162 "Artificial Intelligence" (DCM 123110): the family of a trained network.
        check(algorithm.getAlgorithmFamilyCode().set("123110", "DCM", "Artificial Intelligence"), "AlgorithmFamilyCodeSequence");
        check(algorithm.setAlgorithmName(truncated(str(p.algorithm_name), 64).c_str()), "AlgorithmName");
        check(algorithm.setAlgorithmVersion(truncated(version, 64).c_str()), "AlgorithmVersion");
        check(algorithm.setAlgorithmParameters(("model=" + modelName + " checksum=" + str(p.model_checksum)).c_str()),
              "AlgorithmParameters");
        check(segment->setSegmentationAlgorithmIdentification(algorithm), what + "'s algorithm identification");
        if (d.has_cielab) check(segment->setRecommendedDisplayCIELabValue(d.cielab[0], d.cielab[1], d.cielab[2]), what + "'s colour");
        Uint16 number = 0;
        check(seg->addSegment(segment, number), "adding " + what);
        owned.release();   // the segmentation owns it now
        segmentNumbers.push_back(number);
    }

    // The Referenced Series Sequence: the source series and every source instance, each once.
    IODSeriesAndInstanceReferenceMacro::ReferencedSeriesItem *series = new IODSeriesAndInstanceReferenceMacro::ReferencedSeriesItem;
    seg->getCommonInstanceReference().getReferencedSeriesItems().push_back(series);
    check(series->setSeriesInstanceUID(sourceSeries), "ReferencedSeriesSequence");
    std::set<std::string> referenced;
    for (size_t k = 0; k < sourceCount; k++) {
        if (!referenced.insert(sources[k].sop_instance_uid).second) continue;
        check(series->addReference(sources[k].sop_class_uid, sources[k].sop_instance_uid), "ReferencedInstanceSequence");
    }

    // Frames: for each segment, each slice holding one of its voxels (an empty frame carries no information).
    const size_t frameSize = size_t(p.rows) * p.columns;
    std::vector<Uint8> frame(frameSize);   // [rows][columns], 0 or 1; DCMTK packs it to 1 bit per pixel
    // PixelData as the standard packs BINARY frames: pixel i of frame f is bit (f * rows * columns + i), least
    // significant bit first, frames not padded to bytes. DCMTK 3.6.7 misplaces frames that start inside a byte (frame
    // sizes not a multiple of 8, e.g. 7 x 5), so the pixel data DCMTK builds is replaced by this one before saving.
    std::vector<Uint8> packed;   // grows by a frame's bytes as frames are added
    const CodeSequenceMacro derivation("113076", "DCM", "Segmentation");
    const CodeSequenceMacro purpose("121322", "DCM", "Source image for image processing operation");
    auto addFrame = [&](size_t s, size_t k) {
        packed.resize(((result.frames + 1) * frameSize + 7) / 8, 0);
        FGPlanePosPatient position;
        check(position.setImagePositionPatient(ds(sources[k].position[0]).c_str(), ds(sources[k].position[1]).c_str(),
                                               ds(sources[k].position[2]).c_str()),
              "ImagePositionPatient");
        FGFrameContent content;
        check(content.setDimensionIndexValues(segmentNumbers[s], 0), "DimensionIndexValues");
        check(content.setDimensionIndexValues(Uint32(k + 1), 1), "DimensionIndexValues");
        FGDerivationImage derivationFG;
        DerivationImageItem *item = nullptr;
        check(derivationFG.addDerivationImageItem(derivation, "", item), "DerivationImageSequence");
        SourceImageItem *sourceItem = new SourceImageItem;
        item->getSourceImageItems().push_back(sourceItem);
        sourceItem->getPurposeOfReferenceCode() = purpose;
        ImageSOPInstanceReferenceMacro &ref = sourceItem->getImageSOPInstanceReference();
        check(ref.setReferencedSOPClassUID(sources[k].sop_class_uid), "SourceImageSequence");
        check(ref.setReferencedSOPInstanceUID(sources[k].sop_instance_uid), "SourceImageSequence");
        if (sources[k].frame_number > 0) check(ref.addReferencedFrameNumber(Uint16(sources[k].frame_number)), "ReferencedFrameNumber");
        OFVector<FGBase *> perFrame;
        perFrame.push_back(&position);
        perFrame.push_back(&content);
        perFrame.push_back(&derivationFG);
        check(seg->addFrame(frame.data(), segmentNumbers[s], perFrame), "adding a frame");
        // The same bits, packed here too (see below), frame after frame with no padding between frames.
        const size_t base = result.frames * frameSize;
        for (size_t i = 0; i < frameSize; i++)
            if (frame[i]) packed[(base + i) / 8] |= Uint8(1u << ((base + i) % 8));
        result.frames++;
    };
    for (size_t s = 0; s < segmentCount; s++) {
        const size_t before = result.frames;
        for (size_t k = 0; k < sourceCount; k++) {
            const uint8_t *slice = labels + k * frameSize;
            bool any = false;
            for (size_t i = 0; i < frameSize; i++) {
                frame[i] = slice[i] == segments[s].label;
                any |= frame[i] != 0;
            }
            if (any) addFrame(s, k);
        }
        // A segment without a voxel still gets one frame, empty, on the first slice: DCMTK (and readers that index
        // frames by segment) refuse a segment no frame refers to, and the empty frame says "searched, none found".
        if (result.frames == before) {
            std::fill(frame.begin(), frame.end(), Uint8(0));
            addFrame(s, 0);
        }
    }

    DcmFileFormat out;
    check(seg->writeDataset(*out.getDataset()), "building the SEG dataset");
    if (packed.size() % 2) packed.push_back(0);   // OB values have an even length
    check(out.getDataset()->putAndInsertUint8Array(DCM_PixelData, packed.data(), packed.size()), "PixelData");
    // Segments come from one label map, so no voxel is in two of them.
    check(out.getDataset()->putAndInsertString(DCM_SegmentsOverlap, "NO"), "SegmentsOverlap");
    // Each frame has its source slice's grid (same rows, columns, position, orientation): say so in every source
    // reference, so readers may index the SEG by source instance (highdicom refuses to otherwise).
    DcmSequenceOfItems *perFrameGroups = nullptr;
    check(out.getDataset()->findAndGetSequence(DCM_PerFrameFunctionalGroupsSequence, perFrameGroups), "PerFrameFunctionalGroupsSequence");
    for (unsigned long i = 0; perFrameGroups != nullptr && i < perFrameGroups->card(); i++) {
        DcmItem *derivationItem = nullptr, *sourceItem = nullptr;
        check(perFrameGroups->getItem(i)->findAndGetSequenceItem(DCM_DerivationImageSequence, derivationItem, 0), "DerivationImageSequence");
        check(derivationItem->findAndGetSequenceItem(DCM_SourceImageSequence, sourceItem, 0), "SourceImageSequence");
        check(sourceItem->putAndInsertString(DCM_SpatialLocationsPreserved, "YES"), "SpatialLocationsPreserved");
    }
    check(out.saveFile(OFFilename(outPath), EXS_LittleEndianExplicit), "writing " + str(outPath));
    std::snprintf(result.series_instance_uid, sizeof result.series_instance_uid, "%s", seriesUID.c_str());
    std::snprintf(result.sop_instance_uid, sizeof result.sop_instance_uid, "%s", instanceUID.c_str());
}

}  // namespace

extern "C" int sdcm_write_seg(const sdcm_seg_params *params, const sdcm_seg_source *sources, size_t source_count,
                              const sdcm_seg_segment *segments, size_t segment_count, const uint8_t *labels,
                              const char *out_path, sdcm_seg_result *result, char *err, size_t errlen) {
    auto fail = [&](int code, const std::string &message) {
        if (err != nullptr && errlen > 0) std::snprintf(err, errlen, "%s", message.c_str());
        return code;
    };
    try {
        OFLog::configure(OFLogger::FATAL_LOG_LEVEL);
        *result = sdcm_seg_result();
        write(*params, sources, source_count, segments, segment_count, labels, out_path, *result);
        return SDCM_SEG_OK;
    } catch (const Failure &f) {
        return fail(f.code, f.message);
    } catch (const std::exception &e) {
        return fail(SDCM_SEG_WRITE, e.what());
    } catch (...) {
        return fail(SDCM_SEG_WRITE, "DCMTK failed while writing the segmentation");
    }
}
