// hostprof: one binary, subcommands in the habit of perf.
//   hostprof probe [--json]      what this kernel supports and the attach plan
//   hostprof run [flags]         the daemon
//   hostprof config-reference    the configuration reference (Markdown)
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <map>
#include <string>

#include "agent/config.h"
#include "agent/daemon.h"
#include "agent/logging.h"

namespace {

// Binds every setting of the table as a flag of `cmd`; values land in `values`.
void add_setting_flags(CLI::App* cmd, std::map<std::string, std::string>& values) {
    for (const hostprof::Setting& s : hostprof::settings()) {
        std::string key(s.key);
        std::string flag = hostprof::flag_name(s.key);
        if (s.is_flag)
            cmd->add_flag_callback(
                flag, [&values, key] { values[key] = "true"; }, std::string(s.help));
        else
            cmd->add_option(flag, values[key], std::string(s.help))
                ->type_name(std::string(s.value_hint));
    }
}

// defaults < --config FILE < flags
hostprof::Result<hostprof::Config> build_config(const std::string& config_file,
                                                const std::map<std::string, std::string>& flags,
                                                const CLI::App* cmd) {
    hostprof::Config config;
    if (!config_file.empty()) {
        auto loaded = hostprof::load_config_file(config_file, config);
        if (!loaded)
            return loaded.error();
        config = loaded.value();
    }
    for (const auto& [key, value] : flags) {
        const hostprof::Setting* s = nullptr;
        for (const auto& candidate : hostprof::settings())
            if (candidate.key == key)
                s = &candidate;
        if (s == nullptr ||
            (!s->is_flag && cmd->get_option(hostprof::flag_name(key))->count() == 0))
            continue;
        if (s->is_flag && value.empty())
            continue;
        if (hostprof::Status st = s->set(config, value); !st)
            return hostprof::Error{0, hostprof::flag_name(key) + ": " + st.error().message()};
    }
    return config;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"hostprof: continuous CPU profiles and kernel latency metrics from eBPF"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "hostprof 0.1.0");

    std::string config_file;
    std::map<std::string, std::string> run_flags, probe_flags;
    bool json = false;

    CLI::App* run = app.add_subcommand("run", "Run the agent (until SIGINT/SIGTERM)");
    run->add_option("--config", config_file, "YAML configuration file")->type_name("FILE");
    add_setting_flags(run, run_flags);

    CLI::App* probe = app.add_subcommand("probe", "Show what this kernel supports and the plan");
    probe->add_option("--config", config_file, "YAML configuration file")->type_name("FILE");
    probe->add_flag("--json", json, "Print JSON instead of a table");
    add_setting_flags(probe, probe_flags);

    CLI::App* ref = app.add_subcommand("config-reference", "Print the configuration reference");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }

    if (ref->parsed()) {
        std::fputs(hostprof::config_reference_markdown().c_str(), stdout);
        return 0;
    }
    CLI::App* cmd = run->parsed() ? run : probe;
    auto config = build_config(config_file, run->parsed() ? run_flags : probe_flags, cmd);
    if (!config) {
        std::fprintf(stderr, "hostprof: configuration error: %s\n",
                     config.error().message().c_str());
        return 2;
    }
    hostprof::init_logging(config->log_format, config->log_level);
    if (probe->parsed())
        return hostprof::run_probe(config.value(), json);
    return hostprof::run_agent(config.value());
}
