// Failures cross into JavaScript as (name, reason) pairs and become named JS errors; nothing native throws.
#pragma once

#include <string>

namespace cloudphone {

struct NativeError {
  std::string name;
  std::string reason;
  explicit operator bool() const { return !name.empty(); }
};

inline NativeError error(std::string name, std::string reason) { return NativeError{std::move(name), std::move(reason)}; }

}  // namespace cloudphone
