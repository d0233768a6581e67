// Owning wrappers for libbpf handles. Each is move-only and frees its handle in the
// destructor, so a failure halfway through a setup sequence cleans itself up.
#pragma once

#include <bpf/libbpf.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace hostprof {

namespace detail {
struct LinkDeleter {
    void operator()(bpf_link* l) const { bpf_link__destroy(l); }
};
struct RingBufferDeleter {
    void operator()(ring_buffer* rb) const { ring_buffer__free(rb); }
};
} // namespace detail

// An attached program. Destroying it detaches the program.
using BpfLink = std::unique_ptr<bpf_link, detail::LinkDeleter>;
// A consumer of one or more BPF ring buffers.
using RingBuffer = std::unique_ptr<ring_buffer, detail::RingBufferDeleter>;

// libbpf 1.x returns NULL and sets errno on failure: convert once, here.
inline Result<BpfLink> take_link(bpf_link* link, const std::string& context) {
    if (link == nullptr)
        return errno_error(context);
    return BpfLink(link);
}

// A loaded program of an object, by name and descriptor (owned by the object).
struct ProgramFd {
    std::string name;
    int fd = -1;
};

// Every loaded program of `obj` (autoload-disabled variants are skipped).
inline std::vector<ProgramFd> loaded_programs(const bpf_object* obj) {
    std::vector<ProgramFd> out;
    for (bpf_program* p = bpf_object__next_program(obj, nullptr); p != nullptr;
         p = bpf_object__next_program(obj, p)) {
        int fd = bpf_program__fd(p);
        if (fd >= 0)
            out.push_back({bpf_program__name(p), fd});
    }
    return out;
}

// Skeleton<T> owns a bpftool-generated skeleton (T is the `NAME_bpf` struct; bpftool
// emits static open/load/attach/destroy members for C++).
template <class T> class Skeleton {
  public:
    Skeleton() = default;
    ~Skeleton() { reset(); }
    Skeleton(const Skeleton&) = delete;
    Skeleton& operator=(const Skeleton&) = delete;
    Skeleton(Skeleton&& o) noexcept : skel_(std::exchange(o.skel_, nullptr)) {}
    Skeleton& operator=(Skeleton&& o) noexcept {
        if (this != &o) {
            reset();
            skel_ = std::exchange(o.skel_, nullptr);
        }
        return *this;
    }

    static Result<Skeleton> open(const bpf_object_open_opts* opts = nullptr) {
        T* s = T::open(opts);
        if (s == nullptr)
            return errno_error("open BPF skeleton");
        Skeleton out;
        out.skel_ = s;
        return out;
    }

    Status load() {
        int err = T::load(skel_);
        if (err != 0)
            return errno_error("load BPF object (verifier log above)", err);
        return {};
    }

    T* get() const { return skel_; }
    T* operator->() const { return skel_; }
    explicit operator bool() const { return skel_ != nullptr; }
    void reset() {
        if (skel_ != nullptr)
            T::destroy(std::exchange(skel_, nullptr));
    }

  private:
    T* skel_ = nullptr;
};

} // namespace hostprof
