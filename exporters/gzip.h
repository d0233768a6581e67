// gzip (RFC 1952) for pprof bodies and files: compression with libdeflate (whole
// buffers, fast), decompression with zlib (streaming, bounded output).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace hostprof {

// Compresses `data` into one gzip member (level 0..12; 1 is what Go's runtime/pprof uses).
// The header carries no name and mtime 0, so the same input always gives the same bytes
// (golden files, caching). Empty string on allocation failure.
std::string gzip_compress(std::string_view data, int level = 1);

// Decompresses a gzip stream; std::nullopt on corrupt or truncated input, or when the
// result would exceed `max_size` bytes.
std::optional<std::string> gzip_decompress(std::string_view data,
                                           size_t max_size = size_t{1} << 30);

} // namespace hostprof
