// Output buffers for the renderers. A fresh page is expensive on the first touch, and
// on the VM the bench runs on very much so: a demand fault costs 11-25 us there (the
// guest's page tables are shadowed by the hypervisor), so a 5 MB folded profile spent
// more time faulting its output in than rendering it. What helps, measured there with a
// page-touch loop: reusing buffers (proto::WriterPool: ~20 ns a page), and for output
// that must be fresh, one reservation sized ahead (SizeHint when the size is only known
// afterwards) mapped with one madvise(MADV_POPULATE_WRITE) (~1 us a page, plus ~5 us at
// the first touch that the hypervisor still takes: about half of a demand fault).
#pragma once

#include <atomic>
#include <cstddef>
#include <streambuf>
#include <string>

namespace hostprof {

// Maps the pages of [p, p + n) writable in one call, for buffers of 64 KiB and more
// (smaller ones come from the allocator's warm arenas). Contents are unchanged. A no-op
// where the kernel lacks MADV_POPULATE_WRITE (before 5.14): pages then fault on first
// touch as usual.
void prefault(void* p, size_t n);

// s.reserve(n), then prefault the new capacity.
void reserve_prefaulted(std::string& s, size_t n);

// The size a renderer's last output had, plus an eighth: the reservation for the next
// one when the size cannot be computed in advance.
class SizeHint {
  public:
    size_t next() const { return last_.load(std::memory_order_relaxed) / 8 * 9; }
    void update(size_t n) { last_.store(n, std::memory_order_relaxed); }

  private:
    std::atomic<size_t> last_{0};
};

// A std::streambuf appending to a std::string, for serializers that write to a
// std::ostream (prometheus-cpp, nlohmann::json) into a reserved string.
class StringAppendBuf : public std::streambuf {
  public:
    explicit StringAppendBuf(std::string& out) : out_(out) {}

  protected:
    int_type overflow(int_type c) override {
        if (!traits_type::eq_int_type(c, traits_type::eof()))
            out_.push_back(traits_type::to_char_type(c));
        return traits_type::not_eof(c);
    }
    std::streamsize xsputn(const char* s, std::streamsize n) override {
        out_.append(s, static_cast<size_t>(n));
        return n;
    }

  private:
    std::string& out_;
};

} // namespace hostprof
