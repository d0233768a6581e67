#include "kernel-compat/report.h"

#include <cstdio>
#include <utility>
#include <vector>

namespace hostprof::compat {
namespace {

std::vector<std::pair<const char*, const Feature*>> feature_rows(const Features& f) {
    std::vector<std::pair<const char*, const Feature*>> rows = {
        {"btf", &f.kernel_btf},        {"ringbuf", &f.ringbuf},
        {"get_stack", &f.get_stack},   {"unwind", &f.unwind},
        {"perf_event", &f.perf_event}, {"tp_btf", &f.tp_btf},
        {"raw_tp", &f.raw_tp},         {"tracepoint", &f.tracepoint},
        {"fentry", &f.fentry},         {"kprobe", &f.kprobe},
        {"uprobe", &f.uprobe},         {"tick", &f.tick},
        {"atomics", &f.atomics},       {"task_btf", &f.task_btf},
        {"task_stack", &f.task_stack}, {"task_storage", &f.task_storage},
    };
    if (!f.external_btf_path.empty())
        rows.insert(rows.begin() + 1, {"external_btf", &f.external_btf});
    return rows;
}

} // namespace

nlohmann::json to_json(const Features& f, const AttachPlan& plan) {
    nlohmann::json features = nlohmann::json::object();
    for (auto [name, feat] : feature_rows(f))
        features[name] = {{"available", feat->available}, {"detail", feat->detail}};
    nlohmann::json hooks = nlohmann::json::array();
    for (const HookPlan& h : plan.hooks)
        hooks.push_back({{"hook", h.hook},
                         {"collector", std::string(to_string(h.collector))},
                         {"mode", std::string(to_string(h.mode))},
                         {"reason", h.reason}});
    nlohmann::json collectors = nlohmann::json::object();
    for (Collector c : kAllCollectors) {
        bool planned = false;
        for (const HookPlan& h : plan.hooks)
            planned = planned || h.collector == c;
        if (planned)
            collectors[std::string(to_string(c))] = plan.collector_ready(c);
    }
    return {
        {"kernel", f.kernel_release},
        {"tracefs_mounted", f.tracefs_mounted},
        {"btf_tracepoints", f.btf_tracepoints.size()},
        {"features", features},
        {"plan",
         {{"co_re_possible", plan.co_re_possible},
          {"btf_source", plan.btf_source},
          {"refusal", plan.refusal},
          {"needs_tracefs_mount", plan.needs_tracefs_mount},
          {"collectors_ready", collectors},
          {"hooks", hooks}}},
    };
}

std::string to_table(const Features& f, const AttachPlan& plan) {
    std::string out;
    char line[1024];
    std::snprintf(line, sizeof(line), "kernel %s\n\n%-13s %-5s %s\n", f.kernel_release.c_str(),
                  "FEATURE", "OK", "DETAIL");
    out += line;
    for (auto [name, feat] : feature_rows(f)) {
        std::snprintf(line, sizeof(line), "%-13s %-5s %s\n", name, feat->available ? "yes" : "no",
                      feat->detail.c_str());
        out += line;
    }
    out += "\n";
    if (!plan.refusal.empty())
        out += "REFUSED: " + plan.refusal + "\n\n";
    std::snprintf(line, sizeof(line), "%-10s %-26s %-11s %s\n", "COLLECTOR", "HOOK", "MODE",
                  "REASON");
    out += line;
    for (const HookPlan& h : plan.hooks) {
        std::snprintf(line, sizeof(line), "%-10s %-26s %-11s %s\n",
                      std::string(to_string(h.collector)).c_str(), h.hook.c_str(),
                      std::string(to_string(h.mode)).c_str(), h.reason.c_str());
        out += line;
    }
    return out;
}

} // namespace hostprof::compat
