// Package tiles finds what changed between two screencast frames and cuts
// it out of the newer frame as small JPEGs, losslessly.
//
// Chromium's screencast sends every change, however small, as a whole
// 1280x800 JPEG. Parse reads such a JPEG only as far as its quantized DCT
// coefficients (Huffman decoding, no inverse DCT, no colour conversion).
// Diff compares two frames MCU by MCU (the 16x16-pixel blocks of a 4:2:0
// frame): an MCU whose coefficients are equal decodes to equal pixels, so
// the comparison is exact and cheap. Crop writes a rectangle of MCUs as a
// JPEG of its own from the same coefficients, as jpegtran -crop does: only
// the entropy coding is redone (DC predicted from the crop's start,
// Huffman tables optimal for the crop, no restart markers). DiffShifted
// compares a frame with the previous one shifted by a scroll of whole MCUs
// (the coefficients keep DC absolute, so an MCU compares equal wherever it
// moved): what is left to send once the viewer has copied its canvas by
// the scroll is the exposed strip and whatever else changed, such as a
// fixed header.
//
// Why lossless crops: a crop decodes to exactly the pixels that the same
// rectangle of the whole frame decodes to, so a viewer that pastes crops
// onto its canvas shows the frame Chromium encoded, with no second
// quantization and no seams; and no pixel is encoded twice, since Chromium
// already paid for the DCT and quantization. The tests check the equality
// pixel by pixel with image/jpeg, whose decoder upsamples chroma by
// replication with no filtering across blocks. A decoder that smooths
// chroma when upsampling ("fancy" upsampling, as libjpeg-turbo does by
// default, or a GPU sampling the chroma plane bilinearly) looks across
// block edges: along a crop's edge it sees the crop's own edge instead of
// the neighbouring MCU, so that the chroma there can differ from the full
// frame's by up to a quarter of the chroma step across that edge.
// TestChromiumScreencast measures it in Chromium: crops are identical to
// the full frame inside their outermost two pixels.
//
// Limits: baseline (SOF0) Huffman-coded 8-bit JPEGs with one component, or
// with three in one interleaved scan, luma sampled 1x1, 2x1, 1x2 or 2x2 and
// chroma 1x1 — what Chromium's screencast makes (JFIF, 4:2:0, optimized
// Huffman tables, no restart markers; restart markers are read all the
// same). Progressive, arithmetic-coded, 12-bit, lossless, hierarchical,
// multi-scan, CMYK and other sampling are refused with ErrUnsupported;
// malformed data with ErrCorrupt. Rectangles are whole MCUs: a change is
// rounded out to the MCU grid. Frames whose size, sampling or
// quantization tables differ (a quality change, a resize) are wholly
// different to Diff. Metadata (APPn, COM) is not copied into crops.
package tiles
