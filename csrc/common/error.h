// Errors raised by kernels. Validation happens once, at the Python boundary; the C++
// side re-checks cheaply and throws (never asserts), so a bad call from C++ or a missed
// check in Python becomes an exception rather than an out-of-bounds access.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace fastlayers {

// Thrown for arguments a kernel cannot accept; bound to Python's ValueError.
class ArgumentError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

namespace detail {
inline void append(std::ostringstream&) {}
template <typename T, typename... Rest>
void append(std::ostringstream& os, const T& v, const Rest&... rest) {
  os << v;
  append(os, rest...);
}
}  // namespace detail

// Concatenates its arguments with operator<< into one message.
template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  detail::append(os, args...);
  return os.str();
}

}  // namespace fastlayers

// FL_CHECK(cond, message parts...): throw ArgumentError with the message when cond fails.
#define FL_CHECK(cond, ...)                                                   \
  do {                                                                        \
    if (!(cond)) throw ::fastlayers::ArgumentError(::fastlayers::str_cat(__VA_ARGS__)); \
  } while (0)
