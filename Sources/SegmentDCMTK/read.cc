// Reading DICOM files through DCMTK's dcmdata (the interface is in include/segment_dcmtk.h).
#include "segment_dcmtk.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>
#include <dcmtk/oflog/oflog.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

struct sdcm_file {
    DcmFileFormat format;
};

namespace {

void setError(char *err, size_t errlen, const std::string &message) {
    if (err == nullptr || errlen == 0) return;
    std::snprintf(err, errlen, "%s", message.c_str());
}

// DCMTK logs its warnings to stderr; segment reports its own errors, so DCMTK stays quiet. The decoders are
// registered once, before the first file is read.
void setUp() {
    static bool done = false;
    if (done) return;
    done = true;
    OFLog::configure(OFLogger::FATAL_LOG_LEVEL);
    DJDecoderRegistration::registerCodecs();
    DJLSDecoderRegistration::registerCodecs();
    DcmRLEDecoderRegistration::registerCodecs();
}

DcmTagKey key(sdcm_tag tag) { return DcmTagKey(Uint16(tag >> 16), Uint16(tag & 0xFFFF)); }

// The element `tag` directly in `item` (no search into sequences), or null.
DcmElement *elementIn(DcmItem *item, sdcm_tag tag) {
    if (item == nullptr) return nullptr;
    DcmElement *e = nullptr;
    if (item->findAndGetElement(key(tag), e, OFFalse).bad()) return nullptr;
    return e;
}

DcmElement *element(const sdcm_file *file, sdcm_tag tag) {
    DcmFileFormat &f = const_cast<DcmFileFormat &>(file->format);
    if ((tag >> 16) == 0x0002) return elementIn(f.getMetaInfo(), tag);
    return elementIn(f.getDataset(), tag);
}

int numberOf(DcmElement *e, unsigned index, double *out) {
    if (e == nullptr || e->getLength() == 0) return SDCM_ABSENT;
    if (index >= e->getVM()) return SDCM_BAD_VALUE;
    OFCondition c;
    switch (e->ident()) {
    case EVR_US: { Uint16 v; c = e->getUint16(v, index); *out = v; break; }
    case EVR_SS: { Sint16 v; c = e->getSint16(v, index); *out = v; break; }
    case EVR_UL: { Uint32 v; c = e->getUint32(v, index); *out = v; break; }
    case EVR_SL: { Sint32 v; c = e->getSint32(v, index); *out = v; break; }
    case EVR_IS: { Sint32 v; c = e->getSint32(v, index); *out = v; break; }
    case EVR_DS: case EVR_FD: { Float64 v; c = e->getFloat64(v, index); *out = v; break; }
    case EVR_FL: { Float32 v; c = e->getFloat32(v, index); *out = v; break; }
    default: return SDCM_BAD_VALUE;
    }
    return c.good() ? SDCM_OK : SDCM_BAD_VALUE;
}

// Item `index` of sequence `tag` directly in `item`, or null.
DcmItem *sequenceItem(DcmItem *item, sdcm_tag tag, unsigned index) {
    if (item == nullptr) return nullptr;
    DcmSequenceOfItems *seq = nullptr;
    if (item->findAndGetSequence(key(tag), seq, OFFalse).bad() || seq == nullptr) return nullptr;
    if (index >= seq->card()) return nullptr;
    return seq->getItem(index);
}

}  // namespace

extern "C" int sdcm_is_part10(const char *path) {
    FILE *f = std::fopen(path, "rb");
    if (f == nullptr) return 0;
    unsigned char head[132];
    size_t got = std::fread(head, 1, sizeof head, f);
    std::fclose(f);
    return got == sizeof head && std::memcmp(head + 128, "DICM", 4) == 0;
}

extern "C" sdcm_file *sdcm_open(const char *path, char *err, size_t errlen) {
    try {
        setUp();
        sdcm_file *file = new sdcm_file();
        // Part 10 only (read mode fileformat): a file without the preamble is not taken for a dataset by guesswork.
        OFCondition c = file->format.loadFile(OFFilename(path), EXS_Unknown, EGL_noChange, DCM_MaxReadLength, ERM_fileOnly);
        if (c.bad()) {
            setError(err, errlen, c.text());
            delete file;
            return nullptr;
        }
        return file;
    } catch (const std::exception &e) {
        setError(err, errlen, e.what());
    } catch (...) {
        setError(err, errlen, "DCMTK failed while reading the file");
    }
    return nullptr;
}

extern "C" void sdcm_close(sdcm_file *file) { delete file; }

extern "C" int sdcm_string(const sdcm_file *file, sdcm_tag tag, char *out, size_t outlen) {
    DcmElement *e = element(file, tag);
    if (e == nullptr || e->getLength() == 0) return SDCM_ABSENT;
    OFString value;
    if (e->getOFStringArray(value).bad()) return SDCM_BAD_VALUE;
    size_t end = value.length();
    while (end > 0 && (value[end - 1] == ' ' || value[end - 1] == '\0')) end--;
    if (outlen == 0) return SDCM_BAD_VALUE;
    size_t n = end < outlen - 1 ? end : outlen - 1;
    std::memcpy(out, value.c_str(), n);
    out[n] = '\0';
    return SDCM_OK;
}

extern "C" int sdcm_number(const sdcm_file *file, sdcm_tag tag, unsigned index, double *out) {
    return numberOf(element(file, tag), index, out);
}

extern "C" int sdcm_has(const sdcm_file *file, sdcm_tag tag) {
    DcmFileFormat &f = const_cast<DcmFileFormat &>(file->format);
    return f.getDataset()->tagExists(key(tag), OFFalse) ? 1 : 0;
}

extern "C" int sdcm_value_count(const sdcm_file *file, sdcm_tag tag) {
    DcmElement *e = element(file, tag);
    return e == nullptr || e->getLength() == 0 ? 0 : int(e->getVM());
}

extern "C" int sdcm_frame_number(const sdcm_file *file, unsigned frame, sdcm_tag group, sdcm_tag tag, unsigned index,
                                 double *out) {
    DcmItem *dataset = const_cast<DcmFileFormat &>(file->format).getDataset();
    const sdcm_tag perFrame = 0x52009230, shared = 0x52009229;
    // Per-frame first: a macro may be in either, and per-frame wins when both hold it.
    for (DcmItem *groups : {sequenceItem(dataset, perFrame, frame), sequenceItem(dataset, shared, 0)}) {
        DcmItem *macro = sequenceItem(groups, group, 0);
        if (macro == nullptr) continue;
        return numberOf(elementIn(macro, tag), index, out);
    }
    return SDCM_ABSENT;
}

extern "C" int sdcm_pixels(sdcm_file *file, int32_t *out, size_t count, char *err, size_t errlen) {
    try {
        DcmDataset *ds = file->format.getDataset();
        Uint16 allocated = 0, stored = 0, high = 0, representation = 0;
        if (ds->findAndGetUint16(DCM_BitsAllocated, allocated).bad() || ds->findAndGetUint16(DCM_BitsStored, stored).bad() ||
            ds->findAndGetUint16(DCM_HighBit, high).bad() || ds->findAndGetUint16(DCM_PixelRepresentation, representation).bad()) {
            setError(err, errlen, "BitsAllocated, BitsStored, HighBit or PixelRepresentation is missing");
            return -1;
        }
        if (!(allocated == 8 || allocated == 16) || stored == 0 || stored > allocated ||
            high >= allocated || high + 1 < stored || representation > 1) {
            setError(err, errlen, "BitsAllocated " + std::to_string(allocated) + ", BitsStored " + std::to_string(stored) +
                                      ", HighBit " + std::to_string(high) + " and PixelRepresentation " +
                                      std::to_string(representation) + " do not describe 8- or 16-bit integer pixels (the kinds segment reads)");
            return -1;
        }
        // Compressed pixel data is decoded in place to explicit little endian (a no-op when it is not compressed).
        DcmXfer xfer(ds->getOriginalXfer());
        if (xfer.isEncapsulated()) {
            OFCondition c = ds->chooseRepresentation(EXS_LittleEndianExplicit, nullptr);
            if (c.bad() || !ds->canWriteXfer(EXS_LittleEndianExplicit)) {
                setError(err, errlen, std::string("DCMTK cannot decode its transfer syntax ") + xfer.getXferName() + " (" +
                                          xfer.getXferID() + "): " + c.text());
                return -1;
            }
        }
        DcmElement *pixel = nullptr;
        if (ds->findAndGetElement(DCM_PixelData, pixel).bad() || pixel == nullptr) {
            setError(err, errlen, "it has no PixelData");
            return -1;
        }
        const size_t bytes = size_t(allocated / 8);
        if (pixel->getLength() / bytes < count) {
            setError(err, errlen, "its PixelData holds " + std::to_string(pixel->getLength()) + " bytes, fewer than the " +
                                      std::to_string(count * bytes) + " Rows x Columns x NumberOfFrames x BitsAllocated/8 declares");
            return -1;
        }
        const unsigned shift = unsigned(high + 1 - stored);
        const uint32_t mask = (1u << stored) - 1u;
        const uint32_t sign = 1u << (stored - 1);
        auto convert = [&](uint32_t raw) -> int32_t {
            uint32_t v = (raw >> shift) & mask;
            if (representation == 1 && (v & sign)) v |= ~mask;   // sign-extend from BitsStored
            return int32_t(v);
        };
        OFCondition c;
        if (allocated == 8) {
            const Uint8 *p = nullptr;
            c = pixel->getUint8Array(const_cast<Uint8 *&>(p));
            if (c.good() && p) for (size_t i = 0; i < count; i++) out[i] = convert(p[i]);
        } else {
            Uint16 *p = nullptr;
            c = pixel->getUint16Array(p);
            if (c.good() && p) for (size_t i = 0; i < count; i++) out[i] = convert(p[i]);
        }
        if (c.bad()) {
            setError(err, errlen, std::string("its PixelData cannot be read: ") + c.text());
            return -1;
        }
        return 0;
    } catch (const std::exception &e) {
        setError(err, errlen, e.what());
    } catch (...) {
        setError(err, errlen, "DCMTK failed while decoding the pixel data");
    }
    return -1;
}
