#include "exporters/otlp.h"

#include <sys/random.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <optional>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "exporters/proto_writer.h"

namespace hostprof {

namespace {

// Field numbers of exporters/otlp_profiles.proto (OTLP 1.10/1.11).
namespace field {
constexpr uint32_t kRequestResourceProfiles = 1, kRequestDictionary = 2;
constexpr uint32_t kResourceProfilesResource = 1, kResourceProfilesScopeProfiles = 2;
constexpr uint32_t kResourceAttributes = 1;
constexpr uint32_t kScopeProfilesScope = 1, kScopeProfilesProfiles = 2;
constexpr uint32_t kScopeName = 1, kScopeVersion = 2;
constexpr uint32_t kKeyValueKey = 1, kKeyValueValue = 2;
constexpr uint32_t kAnyString = 1, kAnyInt = 3;
constexpr uint32_t kDictMapping = 1, kDictLocation = 2, kDictFunction = 3, kDictLink = 4,
                   kDictString = 5, kDictAttribute = 6, kDictStack = 7;
constexpr uint32_t kMappingStart = 1, kMappingLimit = 2, kMappingOffset = 3, kMappingFile = 4,
                   kMappingAttributes = 5;
constexpr uint32_t kLocationMapping = 1, kLocationAddress = 2, kLocationLines = 3,
                   kLocationAttributes = 4;
constexpr uint32_t kLineFunction = 1, kLineLine = 2;
constexpr uint32_t kFunctionName = 1, kFunctionSystemName = 2, kFunctionFile = 3;
constexpr uint32_t kAttributeKey = 1, kAttributeValue = 2;
constexpr uint32_t kStackLocations = 1;
constexpr uint32_t kProfileSampleType = 1, kProfileSamples = 2, kProfileTime = 3,
                   kProfileDuration = 4, kProfilePeriodType = 5, kProfilePeriod = 6, kProfileId = 7;
constexpr uint32_t kValueTypeType = 1, kValueTypeUnit = 2;
constexpr uint32_t kSampleStack = 1, kSampleAttributes = 2, kSampleValues = 4;
} // namespace field

// A resource attribute or a dictionary attribute value: a string or an integer.
using AttrValue = std::variant<std::string, int64_t>;

void write_any_value(proto::Writer& out, uint32_t f, const AttrValue& v, proto::Writer& tmp) {
    tmp.clear();
    if (const auto* s = std::get_if<std::string>(&v)) {
        tmp.len_field(field::kAnyString, *s); // present even when empty
    } else {
        tmp.tag(field::kAnyInt, proto::kVarint);
        tmp.varint(static_cast<uint64_t>(std::get<int64_t>(v)));
    }
    out.len_field(f, tmp.view());
}

// Every index table of the request's ProfilesDictionary, each with its zero entry first.
class Dictionary {
  public:
    struct LocationEntry {
        int32_t mapping = 0;
        uint64_t address = 0;
        std::vector<std::pair<int32_t, int64_t>> lines; // function index, line
        std::vector<int32_t> attributes;
        auto operator<=>(const LocationEntry&) const = default;
    };

    Dictionary() {
        strings_.emplace_back();
        string_index_.emplace("", 0);
        mappings_.emplace_back();
        locations_.emplace_back();
        functions_.emplace_back();
        attributes_.emplace_back();
        stacks_.emplace_back();
    }

    int32_t string(std::string_view s) {
        auto [it, inserted] =
            string_index_.try_emplace(std::string(s), static_cast<int32_t>(strings_.size()));
        if (inserted)
            strings_.emplace_back(s);
        return it->second;
    }

    int32_t attribute(std::string_view key, AttrValue value) {
        return intern(attribute_index_, attributes_, Attribute{string(key), std::move(value)});
    }

    int32_t mapping(const Mapping& m) {
        MappingEntry e{m.start, m.limit, m.offset, string(m.file), {}};
        if (!m.build_id.empty())
            e.attributes.push_back(attribute("process.executable.build_id.gnu", m.build_id));
        return intern(mapping_index_, mappings_, std::move(e));
    }

    int32_t function(const std::string& name, const std::string& file) {
        const int32_t n = string(name);
        return intern(function_index_, functions_, FunctionEntry{n, string(file)});
    }

    int32_t location(LocationEntry e) { return intern(location_index_, locations_, std::move(e)); }
    int32_t stack(std::vector<int32_t> locations) {
        return intern(stack_index_, stacks_, std::move(locations));
    }

    void write(proto::Writer& out) const;

  private:
    struct MappingEntry {
        uint64_t start = 0, limit = 0, offset = 0;
        int32_t file = 0;
        std::vector<int32_t> attributes;
        auto operator<=>(const MappingEntry&) const = default;
    };
    struct FunctionEntry {
        int32_t name = 0, file = 0;
        auto operator<=>(const FunctionEntry&) const = default;
    };
    struct Attribute {
        int32_t key = 0;
        AttrValue value;
        auto operator<=>(const Attribute&) const = default;
    };

    template <class T>
    static int32_t intern(std::map<T, int32_t>& index, std::vector<T>& table, T value) {
        auto [it, inserted] = index.try_emplace(value, static_cast<int32_t>(table.size()));
        if (inserted)
            table.push_back(std::move(value));
        return it->second;
    }

    std::vector<std::string> strings_;
    std::unordered_map<std::string, int32_t> string_index_;
    std::vector<MappingEntry> mappings_;
    std::map<MappingEntry, int32_t> mapping_index_;
    std::vector<LocationEntry> locations_;
    std::map<LocationEntry, int32_t> location_index_;
    std::vector<FunctionEntry> functions_;
    std::map<FunctionEntry, int32_t> function_index_;
    std::vector<Attribute> attributes_;
    std::map<Attribute, int32_t> attribute_index_;
    std::vector<std::vector<int32_t>> stacks_;
    std::map<std::vector<int32_t>, int32_t> stack_index_;
};

uint64_t as_varint(int32_t v) {
    return static_cast<uint64_t>(static_cast<int64_t>(v));
}

void Dictionary::write(proto::Writer& out) const {
    proto::Writer m, sub, tmp;
    // Index 0 of every table is its zero value, which encodes as an empty message.
    for (const MappingEntry& e : mappings_) {
        m.clear();
        m.uint64_field(field::kMappingStart, e.start);
        m.uint64_field(field::kMappingLimit, e.limit);
        m.uint64_field(field::kMappingOffset, e.offset);
        m.int64_field(field::kMappingFile, e.file);
        m.packed_field(field::kMappingAttributes, e.attributes.begin(), e.attributes.end(),
                       as_varint);
        out.len_field(field::kDictMapping, m.view());
    }
    for (const LocationEntry& e : locations_) {
        m.clear();
        m.int64_field(field::kLocationMapping, e.mapping);
        m.uint64_field(field::kLocationAddress, e.address);
        for (const auto& [function, line] : e.lines) {
            sub.clear();
            sub.int64_field(field::kLineFunction, function);
            sub.int64_field(field::kLineLine, line);
            m.len_field(field::kLocationLines, sub.view());
        }
        m.packed_field(field::kLocationAttributes, e.attributes.begin(), e.attributes.end(),
                       as_varint);
        out.len_field(field::kDictLocation, m.view());
    }
    for (const FunctionEntry& e : functions_) {
        m.clear();
        m.int64_field(field::kFunctionName, e.name);
        m.int64_field(field::kFunctionSystemName, e.name);
        m.int64_field(field::kFunctionFile, e.file);
        out.len_field(field::kDictFunction, m.view());
    }
    out.len_field(field::kDictLink, {}); // link_table: its zero entry only
    for (const std::string& s : strings_)
        out.len_field(field::kDictString, s);
    for (size_t i = 0; i < attributes_.size(); ++i) {
        m.clear();
        if (i > 0) { // the zero entry has no value at all
            m.int64_field(field::kAttributeKey, attributes_[i].key);
            write_any_value(m, field::kAttributeValue, attributes_[i].value, tmp);
        }
        out.len_field(field::kDictAttribute, m.view());
    }
    for (const std::vector<int32_t>& s : stacks_) {
        m.clear();
        m.packed_field(field::kStackLocations, s.begin(), s.end(), as_varint);
        out.len_field(field::kDictStack, m.view());
    }
}

// The resource of a sample: the process it came from.
struct ResourceKey {
    std::string service, pid, comm, exe, container, pod;
    auto operator<=>(const ResourceKey&) const = default;
};

std::string label(const Sample& s, std::string_view key) {
    for (const auto& [k, v] : s.labels)
        if (k == key)
            return v;
    return {};
}

std::optional<int64_t> to_int(const std::string& s) {
    int64_t v = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || ptr != s.data() + s.size())
        return std::nullopt;
    return v;
}

struct EncodedSample {
    int32_t stack = 0;
    std::optional<int32_t> thread_attribute;
    int64_t value = 0;
};

struct ProfileKind {
    ValueType sample_type, period_type;
    int64_t period = 0;
    size_t value_index = 0; // which of the window's values the samples carry
};

ProfileKind kind_of(const Profile& p) {
    if (p.period_type.type == "cpu" && !p.sample_types.empty())
        return {p.sample_types[0], p.period_type, p.period, 0};
    const size_t i = p.sample_types.size() > 1 ? 1 : 0;
    const ValueType t = p.sample_types.empty() ? ValueType{} : p.sample_types[i];
    return {t, p.period_type, p.period, i};
}

std::string random_profile_id() {
    std::string id(16, '\0');
    if (::getrandom(id.data(), id.size(), 0) != static_cast<ssize_t>(id.size()) ||
        std::all_of(id.begin(), id.end(), [](char c) { return c == 0; }))
        id[0] = 1; // never the all-zero id, which the spec calls invalid
    return id;
}

void write_key_value(proto::Writer& out, uint32_t f, std::string_view key, const AttrValue& v,
                     proto::Writer& kv, proto::Writer& tmp) {
    kv.clear();
    kv.string_field(field::kKeyValueKey, key);
    write_any_value(kv, field::kKeyValueValue, v, tmp);
    out.len_field(f, kv.view());
}

} // namespace

std::string encode_otlp_profiles(std::span<const Profile> windows, const OtlpOptions& options) {
    Dictionary dict;
    // samples[resource][window]
    std::map<ResourceKey, std::vector<std::vector<EncodedSample>>> by_resource;
    std::map<std::string, std::string> build_id_of; // file -> build id, from the mappings

    for (size_t w = 0; w < windows.size(); ++w) {
        const Profile& p = windows[w];
        const ProfileKind kind = kind_of(p);
        std::vector<int32_t> mapping_ids(p.mappings.size());
        for (size_t i = 0; i < p.mappings.size(); ++i) {
            mapping_ids[i] = dict.mapping(p.mappings[i]);
            if (!p.mappings[i].build_id.empty())
                build_id_of.emplace(p.mappings[i].file, p.mappings[i].build_id);
        }
        const int32_t kernel_frame = dict.attribute("profile.frame.type", "kernel");
        const int32_t native_frame = dict.attribute("profile.frame.type", "native");
        std::vector<std::optional<int32_t>> location_ids(p.locations.size());
        auto location_id = [&](uint32_t i) {
            if (!location_ids[i]) {
                const Location& l = p.locations[i];
                Dictionary::LocationEntry e;
                const bool mapped =
                    l.mapping >= 0 && static_cast<size_t>(l.mapping) < p.mappings.size();
                if (mapped)
                    e.mapping = mapping_ids[static_cast<size_t>(l.mapping)];
                e.address = l.address;
                for (const Line& line : l.lines)
                    if (!line.function.empty())
                        e.lines.emplace_back(dict.function(line.function, line.file), line.line);
                const bool kernel = mapped && p.mappings[static_cast<size_t>(l.mapping)].file ==
                                                  "[kernel.kallsyms]";
                e.attributes.push_back(kernel ? kernel_frame : native_frame);
                location_ids[i] = dict.location(std::move(e));
            }
            return *location_ids[i];
        };
        for (const Sample& s : p.samples) {
            std::vector<int32_t> stack;
            stack.reserve(s.locations.size());
            for (uint32_t loc : s.locations)
                if (loc < p.locations.size())
                    stack.push_back(location_id(loc));
            if (stack.empty() || kind.value_index >= s.values.size())
                continue;
            EncodedSample e;
            e.stack = dict.stack(std::move(stack));
            e.value = s.values[kind.value_index];
            if (const auto tid = to_int(label(s, "tid")))
                e.thread_attribute = dict.attribute("thread.id", *tid);
            ResourceKey key{label(s, "service_name"), label(s, "pid"),
                            label(s, "comm"),         label(s, "exe"),
                            label(s, "container_id"), label(s, "pod_uid")};
            auto& per_window = by_resource[std::move(key)];
            per_window.resize(windows.size());
            per_window[w].push_back(e);
        }
    }

    proto::Writer out, rp, res, sp, prof, item, kv, tmp;
    for (const auto& [key, per_window] : by_resource) {
        rp.clear();
        res.clear();
        auto attr = [&](std::string_view k, const AttrValue& v) {
            write_key_value(res, field::kResourceAttributes, k, v, kv, tmp);
        };
        if (!key.service.empty())
            attr("service.name", key.service);
        if (const auto pid = to_int(key.pid))
            attr("process.pid", *pid);
        if (!key.comm.empty())
            attr("process.executable.name", key.comm);
        if (!key.exe.empty()) {
            attr("process.executable.path", key.exe);
            if (auto it = build_id_of.find(key.exe); it != build_id_of.end())
                attr("process.executable.build_id.gnu", it->second);
        }
        if (!key.container.empty())
            attr("container.id", key.container);
        if (!key.pod.empty())
            attr("k8s.pod.uid", key.pod);
        if (!options.host_name.empty())
            attr("host.name", options.host_name);
        rp.len_field(field::kResourceProfilesResource, res.view());

        sp.clear();
        item.clear();
        item.string_field(field::kScopeName, options.scope_name);
        item.string_field(field::kScopeVersion, options.scope_version);
        sp.len_field(field::kScopeProfilesScope, item.view());
        for (size_t w = 0; w < windows.size(); ++w) {
            if (per_window[w].empty())
                continue;
            const Profile& p = windows[w];
            const ProfileKind kind = kind_of(p);
            prof.clear();
            auto value_type = [&](uint32_t f, const ValueType& t) {
                item.clear();
                item.int64_field(field::kValueTypeType, dict.string(t.type));
                item.int64_field(field::kValueTypeUnit, dict.string(t.unit));
                prof.len_field(f, item.view());
            };
            value_type(field::kProfileSampleType, kind.sample_type);
            for (const EncodedSample& s : per_window[w]) {
                item.clear();
                item.int64_field(field::kSampleStack, s.stack);
                if (s.thread_attribute)
                    item.packed_field(field::kSampleAttributes, &*s.thread_attribute,
                                      &*s.thread_attribute + 1, as_varint);
                item.packed_field(field::kSampleValues, &s.value, &s.value + 1,
                                  [](int64_t v) { return static_cast<uint64_t>(v); });
                prof.len_field(field::kProfileSamples, item.view());
            }
            prof.fixed64_field(field::kProfileTime, static_cast<uint64_t>(p.time_nanos));
            prof.uint64_field(field::kProfileDuration, static_cast<uint64_t>(p.duration_nanos));
            value_type(field::kProfilePeriodType, kind.period_type);
            prof.int64_field(field::kProfilePeriod, kind.period);
            prof.len_field(field::kProfileId, random_profile_id());
            sp.len_field(field::kScopeProfilesProfiles, prof.view());
        }
        rp.len_field(field::kResourceProfilesScopeProfiles, sp.view());
        out.len_field(field::kRequestResourceProfiles, rp.view());
    }
    proto::Writer d;
    dict.write(d);
    out.len_field(field::kRequestDictionary, d.view());
    return std::string(out.view());
}

} // namespace hostprof
