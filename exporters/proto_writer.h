// A minimal protobuf wire-format writer for the encoders whose speed matters (pprof,
// Pyroscope push requests, the Prometheus protobuf exposition): varints and length-delimited fields
// appended straight to a growable byte buffer, with no message objects in between. The caller
// writes fields in field-number order and leaves out proto3 defaults, so the bytes are the
// canonical encoding that the generated classes' SerializeAsString() would give (the pprof unit
// tests check that byte for byte).
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string_view>
#include <vector>

#include "exporters/output.h"

namespace hostprof::proto {

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLen = 2 };

// Zigzag encoding of sint32/sint64 fields.
constexpr uint64_t zigzag(int64_t v) {
    return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}

constexpr size_t varint_size(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        ++n;
    }
    return n;
}

class Writer {
  public:
    Writer() = default;
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

    size_t size() const { return size_; }
    size_t capacity() const { return cap_; }
    // Writable storage for a producer that fills the buffer itself (a compressor):
    // reserve(n), write at most n bytes at data(), then set_size().
    char* data() { return data_.get(); }
    void set_size(size_t n) { size_ = n <= cap_ ? n : cap_; }
    bool empty() const { return size_ == 0; }
    std::string_view view() const { return {data_.get(), size_}; }
    void clear() { size_ = 0; }

    void reserve(size_t n) {
        if (n > cap_)
            grow(n);
    }

    void varint(uint64_t v) {
        ensure(10);
        char* p = data_.get() + size_;
        while (v >= 0x80) {
            *p++ = static_cast<char>(v | 0x80);
            v >>= 7;
        }
        *p++ = static_cast<char>(v);
        size_ = static_cast<size_t>(p - data_.get());
    }

    void tag(uint32_t field, WireType type) { varint((uint64_t{field} << 3) | type); }

    void bytes(std::string_view b) {
        ensure(b.size());
        if (!b.empty())
            std::memcpy(data_.get() + size_, b.data(), b.size());
        size_ += b.size();
    }

    // Singular scalar fields: proto3 leaves zero out.
    void uint64_field(uint32_t field, uint64_t v) {
        if (v != 0) {
            tag(field, kVarint);
            varint(v);
        }
    }
    void int64_field(uint32_t field, int64_t v) { uint64_field(field, static_cast<uint64_t>(v)); }
    void sint64_field(uint32_t field, int64_t v) { uint64_field(field, zigzag(v)); }
    // A fixed64 (little-endian as on every host we build for).
    void fixed64_field(uint32_t field, uint64_t v) {
        static_assert(std::endian::native == std::endian::little);
        if (v == 0)
            return;
        tag(field, kFixed64);
        ensure(8);
        std::memcpy(data_.get() + size_, &v, 8);
        size_ += 8;
    }
    // A double (fixed 64-bit, little-endian as on every host we build for).
    void double_field(uint32_t field, double v) {
        static_assert(std::endian::native == std::endian::little);
        if (v == 0 && !std::signbit(v))
            return;
        tag(field, kFixed64);
        ensure(8);
        std::memcpy(data_.get() + size_, &v, 8);
        size_ += 8;
    }
    void bool_field(uint32_t field, bool v) { uint64_field(field, v ? 1 : 0); }

    // A length-delimited field (string, bytes, or an already encoded sub-message). Always
    // written: repeated strings keep their empty entries, and a set sub-message is
    // present even when empty.
    void len_field(uint32_t field, std::string_view payload) {
        tag(field, kLen);
        varint(payload.size());
        bytes(payload);
    }
    // A string or bytes singular field: proto3 leaves the empty string out.
    void string_field(uint32_t field, std::string_view s) {
        if (!s.empty())
            len_field(field, s);
    }

    // A packed repeated varint field from values[0..n) mapped through `f`.
    template <class It, class F> void packed_field(uint32_t field, It first, It last, F f) {
        if (first == last)
            return;
        size_t len = 0;
        for (It it = first; it != last; ++it)
            len += varint_size(f(*it));
        tag(field, kLen);
        varint(len);
        ensure(len);
        for (It it = first; it != last; ++it)
            varint(f(*it));
    }

  private:
    void ensure(size_t extra) {
        if (cap_ - size_ < extra)
            grow(size_ + extra);
    }
    void grow(size_t need) {
        size_t cap = cap_ < 256 ? 256 : cap_;
        while (cap < need)
            cap *= 2;
        std::unique_ptr<char[]> next(new char[cap]); // not zero-filled: written before read
        prefault(next.get(), size_); // what is copied now; not the spare capacity (RSS)
        if (size_ > 0)
            std::memcpy(next.get(), data_.get(), size_);
        data_ = std::move(next);
        cap_ = cap;
    }

    std::unique_ptr<char[]> data_;
    size_t size_ = 0;
    size_t cap_ = 0;
};

// Spare Writers kept between encodings, so that a large buffer is reused rather than
// allocated afresh. An encoded 60 s host profile is ~1.3 MB: at run time buffers of that
// size are mmap()ed (agent/host/malloc_policy.h), and faulting their pages in cost more than
// the encoding (bench VM, exporters_bench under the agent's allocator settings, old and
// new side by side: encode alone 20-26 ms -> 7-10 ms, encode + gzip 31-33 ms -> 14-15 ms;
// exporters/output.h). A pool serves one role (say, "the pprof output buffer"), so a
// lease gets a buffer already sized for it. It is shared by all threads (the HTTP server
// alone has 8 workers) and bounded: at most max_spares writers and max_bytes of capacity
// stay kept; beyond that a returned writer is freed.
class WriterPool {
  public:
    WriterPool(size_t max_spares, size_t max_bytes)
        : max_spares_(max_spares), max_bytes_(max_bytes) {}
    WriterPool(const WriterPool&) = delete;
    WriterPool& operator=(const WriterPool&) = delete;

    class Lease {
      public:
        explicit Lease(WriterPool& pool) : pool_(pool), w_(pool.take()) {}
        ~Lease() { pool_.give(std::move(w_)); }
        Lease(const Lease&) = delete;
        Lease& operator=(const Lease&) = delete;
        Writer& operator*() { return *w_; }
        Writer* operator->() { return w_.get(); }

      private:
        WriterPool& pool_;
        std::unique_ptr<Writer> w_;
    };

    // Capacity held by the spares now.
    size_t kept_bytes() const;

  private:
    std::unique_ptr<Writer> take();
    void give(std::unique_ptr<Writer> w);

    const size_t max_spares_, max_bytes_;
    mutable std::mutex mu_;
    std::vector<std::unique_ptr<Writer>> spares_;
    size_t bytes_ = 0;
};

} // namespace hostprof::proto
