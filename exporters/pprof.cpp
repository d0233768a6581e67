#include "exporters/pprof.h"

#include <google/protobuf/arena.h>

#include <string_view>
#include <unordered_map>

#include "exporters/gzip.h"

namespace hostprof {

namespace {

constexpr int64_t kNanosPerSecond = 1'000'000'000;

// Interns strings into the profile's string table; index 0 is always "".
class StringTable {
  public:
    explicit StringTable(pprof::Profile& out) : out_(out) { intern(""); }

    int64_t intern(const std::string& s) {
        auto [it, inserted] = index_.try_emplace(s, static_cast<int64_t>(index_.size()));
        if (inserted)
            out_.add_string_table(s);
        return it->second;
    }

  private:
    pprof::Profile& out_;
    std::unordered_map<std::string, int64_t> index_;
};

struct FunctionKey {
    int64_t name;
    int64_t file;
    bool operator==(const FunctionKey&) const = default;
};

struct FunctionKeyHash {
    size_t operator()(const FunctionKey& k) const {
        return std::hash<int64_t>{}(k.name) * 31 + std::hash<int64_t>{}(k.file);
    }
};

void set_value_type(pprof::ValueType* out, const ValueType& vt, StringTable& strings) {
    out->set_type(strings.intern(vt.type));
    out->set_unit(strings.intern(vt.unit));
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

// Fills `out` (empty, possibly arena-allocated) from `p`.
static void fill_message(const Profile& p, pprof::Profile& out) {
    StringTable strings(out);

    for (const ValueType& vt : p.sample_types)
        set_value_type(out.add_sample_type(), vt, strings);
    set_value_type(out.mutable_period_type(), p.period_type, strings);
    out.set_period(p.period);
    out.set_time_nanos(p.time_nanos);
    out.set_duration_nanos(p.duration_nanos);

    // Mapping flags are facts about the locations that point into each mapping.
    struct MappingFacts {
        bool functions = false, filenames = false, line_numbers = false, inline_frames = false;
    };
    std::vector<MappingFacts> facts(p.mappings.size());

    std::unordered_map<FunctionKey, uint64_t, FunctionKeyHash> function_ids;
    out.mutable_location()->Reserve(static_cast<int>(p.locations.size()));
    for (size_t i = 0; i < p.locations.size(); ++i) {
        const Location& loc = p.locations[i];
        pprof::Location* l = out.add_location();
        l->set_id(i + 1);
        l->set_address(loc.address);
        const bool has_mapping =
            loc.mapping >= 0 && static_cast<size_t>(loc.mapping) < p.mappings.size();
        if (has_mapping)
            l->set_mapping_id(static_cast<uint64_t>(loc.mapping) + 1);
        int named = 0;
        for (const Line& line : loc.lines) {
            if (line.function.empty())
                continue;
            ++named;
            const FunctionKey key{strings.intern(line.function), strings.intern(line.file)};
            auto [it, inserted] = function_ids.try_emplace(key, function_ids.size() + 1);
            if (inserted) {
                pprof::Function* f = out.add_function();
                f->set_id(it->second);
                f->set_name(key.name);
                f->set_system_name(key.name);
                f->set_filename(key.file);
            }
            pprof::Line* pl = l->add_line();
            pl->set_function_id(it->second);
            pl->set_line(line.line);
            if (has_mapping) {
                MappingFacts& m = facts[static_cast<size_t>(loc.mapping)];
                m.functions = true;
                m.filenames |= !line.file.empty();
                m.line_numbers |= line.line > 0;
            }
        }
        if (has_mapping && named > 1)
            facts[static_cast<size_t>(loc.mapping)].inline_frames = true;
    }

    for (size_t i = 0; i < p.mappings.size(); ++i) {
        const Mapping& m = p.mappings[i];
        pprof::Mapping* pm = out.add_mapping();
        pm->set_id(i + 1);
        pm->set_memory_start(m.start);
        pm->set_memory_limit(m.limit);
        pm->set_file_offset(m.offset);
        pm->set_filename(strings.intern(m.file));
        pm->set_build_id(strings.intern(m.build_id));
        pm->set_has_functions(facts[i].functions);
        pm->set_has_filenames(facts[i].filenames);
        pm->set_has_line_numbers(facts[i].line_numbers);
        pm->set_has_inline_frames(facts[i].inline_frames);
    }

    const size_t n_values = p.sample_types.size();
    out.mutable_sample()->Reserve(static_cast<int>(p.samples.size()));
    for (const Sample& s : p.samples) {
        pprof::Sample* ps = out.add_sample();
        for (uint32_t idx : s.locations)
            if (idx < p.locations.size())
                ps->add_location_id(uint64_t{idx} + 1);
        for (size_t v = 0; v < n_values; ++v)
            ps->add_value(v < s.values.size() ? s.values[v] : 0);
        for (const auto& [key, value] : s.labels) {
            pprof::Label* label = ps->add_label();
            label->set_key(strings.intern(key));
            label->set_str(strings.intern(value));
        }
    }
}

pprof::Profile to_pprof_message(const Profile& p) {
    pprof::Profile out;
    fill_message(p, out);
    return out;
}

std::string render_pprof(const Profile& p) {
    // One arena for the whole message: a host profile has tens of thousands of small
    // sub-messages, and freeing them one by one cost as much as building them.
    google::protobuf::ArenaOptions options;
    options.start_block_size = 64 * 1024;
    options.max_block_size = 1024 * 1024;
    google::protobuf::Arena arena(options);
    auto* message = google::protobuf::Arena::CreateMessage<pprof::Profile>(&arena);
    fill_message(p, *message);
    return gzip_compress(message->SerializeAsString());
}

} // namespace hostprof
