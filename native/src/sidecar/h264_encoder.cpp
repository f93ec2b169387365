#include "h264_encoder.h"

#include <string>

namespace cloudphone {

H264Encoder::~H264Encoder() { close(); }

static void apply_rate(x264_param_t* param, uint32_t kbps, uint32_t fps) {
  param->rc.i_rc_method = X264_RC_ABR;
  param->rc.i_bitrate = static_cast<int>(kbps);
  param->rc.i_vbv_max_bitrate = static_cast<int>(kbps);
  // A quarter second of VBV: big enough that a keyframe is not a smear, small enough that the network
  // never has to absorb a burst longer than the SRT latency window.
  param->rc.i_vbv_buffer_size = static_cast<int>(kbps / 4 > kbps / fps ? kbps / 4 : kbps / fps);
}

NativeError H264Encoder::open(const EncoderSettings& settings) {
  close();
  settings_ = settings;
  if (x264_param_default_preset(&param_, settings.preset, "zerolatency") != 0)
    return error("EncoderError", std::string("unknown x264 preset ") + settings.preset);
  param_.i_width = static_cast<int>(settings.width);
  param_.i_height = static_cast<int>(settings.height);
  param_.i_csp = X264_CSP_NV12;
  param_.i_fps_num = settings.fps;
  param_.i_fps_den = 1;
  param_.i_timebase_num = 1;
  param_.i_timebase_den = 90000;
  // Constant-rate input for rate control (fps is the cap). Variable-rate input costs a frame of latency:
  // x264 then holds every picture until the next one arrives, to learn its duration. Timestamps still pass
  // through unchanged.
  param_.b_vfr_input = 0;
  param_.i_keyint_max = settings.keyframe_interval_frames ? static_cast<int>(settings.keyframe_interval_frames)
                                                          : X264_KEYINT_MAX_INFINITE;
  param_.i_keyint_min = 1;
  param_.b_intra_refresh = settings.intra_refresh ? 1 : 0;
  param_.b_repeat_headers = 1;
  param_.b_annexb = 1;
  param_.b_aud = 1;  // the MPEG-TS muxer wants an AUD first; without one it copies every packet to add it
  param_.i_log_level = X264_LOG_ERROR;
  param_.vui.i_colorprim = 6;  // BT.601, as libyuv's RGB to YUV conversion
  param_.vui.i_transfer = 6;
  param_.vui.i_colmatrix = 6;
  param_.vui.b_fullrange = 0;
  apply_rate(&param_, settings.bitrate_kbps, settings.fps);
  if (x264_param_apply_profile(&param_, "high") != 0) return error("EncoderError", "x264 rejected the high profile");
  encoder_ = x264_encoder_open(&param_);
  if (!encoder_)
    return error("EncoderError", "x264 cannot open " + std::to_string(settings.width) + "x" +
                                     std::to_string(settings.height));
  x264_picture_init(&input_);

  x264_nal_t* nals = nullptr;
  int count = 0;
  parameter_sets_.clear();
  if (x264_encoder_headers(encoder_, &nals, &count) >= 0) {
    for (int i = 0; i < count; i++) {
      if (nals[i].i_type == NAL_SPS || nals[i].i_type == NAL_PPS)
        parameter_sets_.insert(parameter_sets_.end(), nals[i].p_payload, nals[i].p_payload + nals[i].i_payload);
    }
  }
  return {};
}

void H264Encoder::close() {
  if (encoder_) x264_encoder_close(encoder_);
  encoder_ = nullptr;
}

bool H264Encoder::encode(const InputPlanes& input, int64_t pts, bool force_keyframe, EncodedPicture* out) {
  // x264 copies the input into its own frame before encode returns, so pointers into the shared mapping
  // are only read during this call.
  input_.img.i_csp = input.nv12 ? X264_CSP_NV12 : X264_CSP_I420;
  input_.img.i_plane = input.nv12 ? 2 : 3;
  for (int i = 0; i < 3; i++) {
    input_.img.plane[i] = const_cast<uint8_t*>(input.plane[i]);
    input_.img.i_stride[i] = static_cast<int>(input.stride[i]);
  }
  input_.i_pts = pts;
  input_.i_type = force_keyframe ? X264_TYPE_IDR : X264_TYPE_AUTO;
  x264_nal_t* nals = nullptr;
  int count = 0;
  int size = x264_encoder_encode(encoder_, &nals, &count, &input_, &output_);
  if (size < 0) return false;
  out->size = static_cast<std::size_t>(size);
  // With b_annexb the NAL units of one picture lie back to back in one buffer.
  out->data = size > 0 ? nals[0].p_payload : nullptr;
  out->keyframe = output_.b_keyframe != 0;
  out->pts = output_.i_pts;
  return true;
}

bool H264Encoder::set_bitrate(uint32_t kbps) {
  if (!encoder_) return false;
  apply_rate(&param_, kbps, settings_.fps);
  if (x264_encoder_reconfig(encoder_, &param_) != 0) return false;
  settings_.bitrate_kbps = kbps;
  return true;
}

}  // namespace cloudphone
