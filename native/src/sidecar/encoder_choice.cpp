#include "encoder_choice.h"

#include <dirent.h>
#include <unistd.h>

#include <cstring>

namespace cloudphone {
namespace {

bool has_render_node() {
  DIR* dri = opendir("/dev/dri");
  if (!dri) return false;
  bool found = false;
  while (dirent* entry = readdir(dri))
    if (std::strncmp(entry->d_name, "renderD", 7) == 0) found = true;
  closedir(dri);
  return found;
}

bool has_nvidia_device() { return access("/dev/nvidia0", F_OK) == 0; }

}  // namespace

NativeError choose_encoder(const std::string& requested, EncoderChoice* choice) {
  choice->name = "x264";
  if (requested == "software") {
    choice->reason = "software encoding was asked for";
    return {};
  }
  if (requested == "auto") {
    bool device = has_render_node() || has_nvidia_device();
    choice->reason = device ? "a GPU is present, but this build encodes in software only"
                            : "no GPU (no /dev/dri render node, no /dev/nvidia0)";
    return {};
  }
  if (requested == "vaapi")
    return error("EncoderError", has_render_node()
                                     ? "vaapi: this build encodes in software only; use encoder auto or software"
                                     : "vaapi: no render node under /dev/dri; mount the GPU into the sidecar");
  if (requested == "nvenc")
    return error("EncoderError", has_nvidia_device()
                                     ? "nvenc: this build encodes in software only; use encoder auto or software"
                                     : "nvenc: no /dev/nvidia0; give the sidecar the NVIDIA device");
  return error("ConfigError", "encoder must be auto, software, vaapi or nvenc, not " + requested.substr(0, 32));
}

}  // namespace cloudphone
