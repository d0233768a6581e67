// Result<T>: a value or an Error {errno, context}. libbpf's -errno / NULL+errno
// conventions are converted once, at the boundary, by errno_error() and
// libbpf_result().
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

namespace hostprof {

struct Error {
    int err = 0;         // errno value, 0 when the failure is not a system error
    std::string context; // what we were doing, e.g. "open /sys/kernel/btf/vmlinux"

    std::string message() const {
        if (err == 0)
            return context;
        return context + ": " + std::strerror(err) + " (errno " + std::to_string(err) + ")";
    }
};

inline Error errno_error(std::string context, int err = errno) {
    return Error{err < 0 ? -err : err, std::move(context)};
}

template <class T> class [[nodiscard]] Result {
  public:
    Result(T value) : v_(std::move(value)) {}
    Result(Error error) : v_(std::move(error)) {}

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }

    const Error& error() const { return std::get<1>(v_); }

  private:
    std::variant<T, Error> v_;
};

template <> class [[nodiscard]] Result<void> {
  public:
    Result() = default;
    Result(Error error) : error_(std::move(error)), ok_(false) {}

    bool ok() const { return ok_; }
    explicit operator bool() const { return ok_; }
    const Error& error() const { return error_; }

  private:
    Error error_;
    bool ok_ = true;
};

using Status = Result<void>;

} // namespace hostprof
