#pragma once

// A bounds-checked reader of DWARF data (little- or big-endian), shared by the line-table
// and .debug_aranges parsers.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace hostprof::sym {

// A bounds-checked little- or big-endian reader over [p, end).
class Reader {
  public:
    Reader(const uint8_t* p, const uint8_t* end, bool big_endian)
        : p_(p), end_(end), big_endian_(big_endian) {}

    const uint8_t* pos() const { return p_; }
    const uint8_t* end() const { return end_; }
    size_t left() const { return static_cast<size_t>(end_ - p_); }
    bool at_end() const { return p_ >= end_; }
    void set_end(const uint8_t* e) { end_ = e; }
    void seek(const uint8_t* p) { p_ = p; }

    bool skip(uint64_t n) {
        if (n > left())
            return false;
        p_ += n;
        return true;
    }
    bool u8(uint8_t& v) {
        if (p_ >= end_)
            return false;
        v = *p_++;
        return true;
    }
    // An unsigned integer of `size` (1..8) bytes.
    bool uint(size_t size, uint64_t& v) {
        if (size == 0 || size > 8 || size > left())
            return false;
        v = 0;
        for (size_t i = 0; i < size; ++i) {
            const uint64_t b = p_[big_endian_ ? i : size - 1 - i];
            v = (v << 8) | b;
        }
        p_ += size;
        return true;
    }
    bool uleb(uint64_t& v) {
        v = 0;
        unsigned shift = 0;
        while (p_ < end_) {
            const uint8_t b = *p_++;
            if (shift < 64)
                v |= static_cast<uint64_t>(b & 0x7f) << shift;
            shift += 7;
            if ((b & 0x80) == 0)
                return true;
        }
        return false;
    }
    bool sleb(int64_t& v) {
        uint64_t u = 0;
        unsigned shift = 0;
        while (p_ < end_) {
            const uint8_t b = *p_++;
            if (shift < 64)
                u |= static_cast<uint64_t>(b & 0x7f) << shift;
            shift += 7;
            if ((b & 0x80) == 0) {
                if (shift < 64 && (b & 0x40) != 0)
                    u |= ~uint64_t{0} << shift;
                v = static_cast<int64_t>(u);
                return true;
            }
        }
        return false;
    }
    // A NUL-terminated string (the NUL is consumed, not part of the view).
    bool cstr(std::string_view& s) {
        for (const uint8_t* q = p_; q < end_; ++q)
            if (*q == 0) {
                s = std::string_view(reinterpret_cast<const char*>(p_),
                                     static_cast<size_t>(q - p_));
                p_ = q + 1;
                return true;
            }
        return false;
    }

  private:
    const uint8_t* p_;
    const uint8_t* end_;
    bool big_endian_;
};

} // namespace hostprof::sym
