#include "exporters/gzip.h"

#include <zlib.h>

#include <limits>

namespace hostprof {

namespace {
constexpr int kGzipWindowBits = 15 + 16; // 32 KiB window, gzip wrapper
constexpr int kMemLevel = 8;
} // namespace

std::string gzip_compress(std::string_view data, int level) {
    if (data.size() > std::numeric_limits<uInt>::max())
        return {};
    z_stream zs{};
    if (deflateInit2(&zs, level, Z_DEFLATED, kGzipWindowBits, kMemLevel, Z_DEFAULT_STRATEGY) !=
        Z_OK)
        return {};
    std::string out;
    out.resize(deflateBound(&zs, static_cast<uLong>(data.size())));
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    zs.avail_in = static_cast<uInt>(data.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    const int rc = deflate(&zs, Z_FINISH);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    if (rc != Z_STREAM_END)
        return {};
    if (out.capacity() > out.size() + out.size() / 4)
        out.shrink_to_fit(); // deflateBound is the worst case; do not hand it to the caller
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
