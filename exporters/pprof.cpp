#include "exporters/pprof.h"

#include <string_view>
#include <unordered_map>
#include <vector>

#include "exporters/gzip.h"
#include "exporters/output.h"
#include "exporters/proto_writer.h"

namespace hostprof {

namespace {

constexpr int64_t kNanosPerSecond = 1'000'000'000;

// profile.proto field numbers (exporters/profile.proto).
namespace field {
constexpr uint32_t kProfileSampleType = 1, kProfileSample = 2, kProfileMapping = 3,
                   kProfileLocation = 4, kProfileFunction = 5, kProfileStringTable = 6,
                   kProfileTimeNanos = 9, kProfileDurationNanos = 10, kProfilePeriodType = 11,
                   kProfilePeriod = 12;
constexpr uint32_t kValueTypeType = 1, kValueTypeUnit = 2;
constexpr uint32_t kSampleLocationId = 1, kSampleValue = 2, kSampleLabel = 3;
constexpr uint32_t kLabelKey = 1, kLabelStr = 2;
constexpr uint32_t kMappingId = 1, kMappingStart = 2, kMappingLimit = 3, kMappingOffset = 4,
                   kMappingFilename = 5, kMappingBuildId = 6, kMappingHasFunctions = 7,
                   kMappingHasFilenames = 8, kMappingHasLineNumbers = 9,
                   kMappingHasInlineFrames = 10;
constexpr uint32_t kLocationId = 1, kLocationMappingId = 2, kLocationAddress = 3, kLocationLine = 4;
constexpr uint32_t kLineFunctionId = 1, kLineLine = 2;
constexpr uint32_t kFunctionId = 1, kFunctionName = 2, kFunctionSystemName = 3,
                   kFunctionFilename = 4;
} // namespace field

// Interns strings into the profile's string table; index 0 is always "". Keys are views
// of the input Profile's strings, which outlive the encoding.
class StringTable {
  public:
    StringTable() {
        index_.reserve(1024);
        strings_.reserve(1024);
        intern("");
    }

    uint64_t intern(std::string_view s) {
        auto [it, inserted] = index_.try_emplace(s, strings_.size());
        if (inserted)
            strings_.push_back(s);
        return it->second;
    }

    const std::vector<std::string_view>& strings() const { return strings_; }

  private:
    std::unordered_map<std::string_view, uint64_t> index_;
    std::vector<std::string_view> strings_;
};

// Reused buffers (proto::WriterPool): the whole message, and its locations and functions,
// which are encoded before the samples but written after them. One spare per role (a
// render concurrent with another gets fresh buffers), of at most 4, 1 and 1 MiB: with
// gzip's, 10 MiB kept at most; ~3 MiB after a 60 s host profile (1.3 MB encoded).
proto::WriterPool& message_pool() {
    static auto* pool = new proto::WriterPool(1, 4 << 20);
    return *pool;
}
proto::WriterPool& locations_pool() {
    static auto* pool = new proto::WriterPool(1, 1 << 20);
    return *pool;
}
proto::WriterPool& functions_pool() {
    static auto* pool = new proto::WriterPool(1, 1 << 20);
    return *pool;
}

struct FunctionKey {
    uint64_t name;
    uint64_t file;
    bool operator==(const FunctionKey&) const = default;
};

struct FunctionKeyHash {
    size_t operator()(const FunctionKey& k) const {
        return std::hash<uint64_t>{}(k.name * 0x9E3779B97F4A7C15ULL ^ k.file);
    }
};

void value_type(proto::Writer& out, uint32_t field_no, const ValueType& vt, StringTable& strings,
                proto::Writer& scratch) {
    scratch.clear();
    scratch.uint64_field(field::kValueTypeType, strings.intern(vt.type));
    scratch.uint64_field(field::kValueTypeUnit, strings.intern(vt.unit));
    out.len_field(field_no, scratch.view());
}

// The encoder. Strings are interned in the order the message-building encoder used
// (sample types, period type, locations' functions, mappings, sample labels) so the
// string table, and with it every byte, stays the same.
void encode(const Profile& p, proto::Writer& out) {
    StringTable strings;
    proto::Writer scratch, inner;

    for (const ValueType& vt : p.sample_types)
        value_type(out, field::kProfileSampleType, vt, strings, scratch);
    proto::Writer period_type;
    value_type(period_type, field::kProfilePeriodType, p.period_type, strings, scratch);

    // Mapping flags are facts about the locations that point into each mapping.
    struct MappingFacts {
        bool functions = false, filenames = false, line_numbers = false, inline_frames = false;
    };
    std::vector<MappingFacts> facts(p.mappings.size());

    proto::WriterPool::Lease locations_lease(locations_pool()), functions_lease(functions_pool());
    proto::Writer& locations = *locations_lease;
    proto::Writer& functions = *functions_lease;
    std::unordered_map<FunctionKey, uint64_t, FunctionKeyHash> function_ids;
    function_ids.reserve(p.locations.size());
    for (size_t i = 0; i < p.locations.size(); ++i) {
        const Location& loc = p.locations[i];
        const bool has_mapping =
            loc.mapping >= 0 && static_cast<size_t>(loc.mapping) < p.mappings.size();
        scratch.clear();
        scratch.uint64_field(field::kLocationId, i + 1);
        if (has_mapping)
            scratch.uint64_field(field::kLocationMappingId, static_cast<uint64_t>(loc.mapping) + 1);
        scratch.uint64_field(field::kLocationAddress, loc.address);
        int named = 0;
        for (const Line& line : loc.lines) {
            if (line.function.empty())
                continue;
            ++named;
            const FunctionKey key{strings.intern(line.function), strings.intern(line.file)};
            auto [it, inserted] = function_ids.try_emplace(key, function_ids.size() + 1);
            if (inserted) {
                inner.clear();
                inner.uint64_field(field::kFunctionId, it->second);
                inner.uint64_field(field::kFunctionName, key.name);
                inner.uint64_field(field::kFunctionSystemName, key.name);
                inner.uint64_field(field::kFunctionFilename, key.file);
                functions.len_field(field::kProfileFunction, inner.view());
            }
            inner.clear();
            inner.uint64_field(field::kLineFunctionId, it->second);
            inner.int64_field(field::kLineLine, line.line);
            scratch.len_field(field::kLocationLine, inner.view());
            if (has_mapping) {
                MappingFacts& m = facts[static_cast<size_t>(loc.mapping)];
                m.functions = true;
                m.filenames |= !line.file.empty();
                m.line_numbers |= line.line > 0;
            }
        }
        if (has_mapping && named > 1)
            facts[static_cast<size_t>(loc.mapping)].inline_frames = true;
        locations.len_field(field::kProfileLocation, scratch.view());
    }

    proto::Writer mappings;
    for (size_t i = 0; i < p.mappings.size(); ++i) {
        const Mapping& m = p.mappings[i];
        scratch.clear();
        scratch.uint64_field(field::kMappingId, i + 1);
        scratch.uint64_field(field::kMappingStart, m.start);
        scratch.uint64_field(field::kMappingLimit, m.limit);
        scratch.uint64_field(field::kMappingOffset, m.offset);
        scratch.uint64_field(field::kMappingFilename, strings.intern(m.file));
        scratch.uint64_field(field::kMappingBuildId, strings.intern(m.build_id));
        scratch.bool_field(field::kMappingHasFunctions, facts[i].functions);
        scratch.bool_field(field::kMappingHasFilenames, facts[i].filenames);
        scratch.bool_field(field::kMappingHasLineNumbers, facts[i].line_numbers);
        scratch.bool_field(field::kMappingHasInlineFrames, facts[i].inline_frames);
        mappings.len_field(field::kProfileMapping, scratch.view());
    }

    const size_t n_values = p.sample_types.size();
    const size_t n_locations = p.locations.size();
    for (const Sample& s : p.samples) {
        scratch.clear();
        // Location indexes out of range are dropped; values are padded with zeros or cut
        // to the number of sample types.
        size_t len = 0;
        for (uint32_t idx : s.locations)
            if (idx < n_locations)
                len += proto::varint_size(uint64_t{idx} + 1);
        if (len > 0) {
            scratch.tag(field::kSampleLocationId, proto::kLen);
            scratch.varint(len);
            for (uint32_t idx : s.locations)
                if (idx < n_locations)
                    scratch.varint(uint64_t{idx} + 1);
        }
        if (n_values > 0) {
            auto value = [&](size_t v) {
                return static_cast<uint64_t>(v < s.values.size() ? s.values[v] : 0);
            };
            len = 0;
            for (size_t v = 0; v < n_values; ++v)
                len += proto::varint_size(value(v));
            scratch.tag(field::kSampleValue, proto::kLen);
            scratch.varint(len);
            for (size_t v = 0; v < n_values; ++v)
                scratch.varint(value(v));
        }
        for (const auto& [key, value] : s.labels) {
            inner.clear();
            inner.uint64_field(field::kLabelKey, strings.intern(key));
            inner.uint64_field(field::kLabelStr, strings.intern(value));
            scratch.len_field(field::kSampleLabel, inner.view());
        }
        out.len_field(field::kProfileSample, scratch.view());
    }

    out.bytes(mappings.view());
    out.bytes(locations.view());
    out.bytes(functions.view());
    for (std::string_view s : strings.strings())
        out.len_field(field::kProfileStringTable, s);
    out.int64_field(field::kProfileTimeNanos, p.time_nanos);
    out.int64_field(field::kProfileDurationNanos, p.duration_nanos);
    out.bytes(period_type.view());
    out.int64_field(field::kProfilePeriod, p.period);
}

} // namespace

void set_cpu_profile_types(Profile& p, int frequency_hz) {
    p.sample_types = {{"samples", "count"}, {"cpu", "nanoseconds"}};
    p.period_type = {"cpu", "nanoseconds"};
    p.period = kNanosPerSecond / (frequency_hz > 0 ? frequency_hz : 1);
}

void set_off_cpu_profile_types(Profile& p) {
    p.sample_types = {{"samples", "count"}, {"off_cpu", "nanoseconds"}};
    p.period_type = {"off_cpu", "nanoseconds"};
    p.period = 1;
}

std::string encode_pprof(const Profile& p) {
    proto::WriterPool::Lease out(message_pool());
    encode(p, *out);
    std::string bytes;
    reserve_prefaulted(bytes, out->size());
    bytes.append(out->view());
    return bytes;
}

pprof::Profile to_pprof_message(const Profile& p) {
    pprof::Profile out;
    proto::WriterPool::Lease bytes(message_pool());
    encode(p, *bytes);
    const std::string_view v = bytes->view();
    out.ParseFromArray(v.data(), static_cast<int>(v.size()));
    return out;
}

std::string render_pprof(const Profile& p) {
    proto::WriterPool::Lease out(message_pool());
    encode(p, *out);
    return gzip_compress(out->view());
}

} // namespace hostprof
