#include "exporters/gzip.h"

#include <libdeflate.h>
#include <zlib.h>

#include <algorithm>
#include <limits>
#include <new>

#include "exporters/output.h"
#include "exporters/proto_writer.h"

namespace hostprof {

namespace {
constexpr int kGzipWindowBits = 15 + 16; // 32 KiB window, gzip wrapper
} // namespace

std::string gzip_compress(std::string_view data, int level) {
    // libdeflate compresses a whole buffer at once, about twice as fast as zlib's deflate
    // at the same level on pprof bytes, and a little smaller (BENCHMARKS.md, Exporters).
    // One compressor per thread and level: setting one up costs more than compressing a
    // small profile.
    struct Compressor {
        int level = -1;
        libdeflate_compressor* c = nullptr;
        ~Compressor() { libdeflate_free_compressor(c); }
    };
    thread_local Compressor cached;
    level = std::clamp(level, 0, 12);
    if (cached.level != level) {
        libdeflate_free_compressor(cached.c);
        cached.c = libdeflate_alloc_compressor(level);
        cached.level = cached.c != nullptr ? level : -1;
        if (cached.c == nullptr)
            return {};
    }
    // The bound is the incompressible worst case, larger than the input. The buffer is
    // reused between calls (fresh, its page faults cost about as much as compressing
    // into it: proto::WriterPool); only what was used is copied out.
    static auto* pool = new proto::WriterPool(1, 4 << 20);
    const size_t bound = libdeflate_gzip_compress_bound(cached.c, data.size());
    proto::WriterPool::Lease buf(*pool);
    try {
        buf->reserve(bound);
    } catch (const std::bad_alloc&) {
        return {};
    }
    const size_t n =
        libdeflate_gzip_compress(cached.c, data.data(), data.size(), buf->data(), bound);
    if (n == 0)
        return {};
    std::string out;
    reserve_prefaulted(out, n);
    out.append(buf->data(), n);
    return out;
}

std::optional<std::string> gzip_decompress(std::string_view data, size_t max_size) {
    if (data.size() > std::numeric_limits<uInt>::max())
        return std::nullopt;
    z_stream zs{};
    if (inflateInit2(&zs, kGzipWindowBits) != Z_OK)
        return std::nullopt;
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    zs.avail_in = static_cast<uInt>(data.size());
    std::string out;
    char buf[64 * 1024];
    int rc = Z_OK;
    while (rc == Z_OK) {
        zs.next_out = reinterpret_cast<Bytef*>(buf);
        zs.avail_out = sizeof buf;
        rc = inflate(&zs, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END)
            break;
        out.append(buf, sizeof buf - zs.avail_out);
        if (out.size() > max_size) {
            rc = Z_MEM_ERROR;
            break;
        }
        if (rc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) {
            rc = Z_DATA_ERROR; // input ended before the stream did
            break;
        }
    }
    inflateEnd(&zs);
    if (rc != Z_STREAM_END)
        return std::nullopt;
    return out;
}

} // namespace hostprof
