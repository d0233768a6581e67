// hostprof: one binary, subcommands in the habit of perf.
//   hostprof probe [--json]      what this kernel supports and the attach plan
//   hostprof run [flags]         the daemon
//   hostprof record [flags]      a one-shot profile to a file
//   hostprof config-reference    the configuration reference (Markdown)
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <map>
#include <string>

#include "agent/app/cmd_record.h"
#include "agent/app/cmd_symbolize.h"
#include "agent/config/config.h"
#include "agent/app/daemon.h"
#include "agent/host/logging.h"
#include "agent/host/malloc_policy.h"

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

int run_main(int argc, char** argv) {
    hostprof::set_startup_malloc_policy();
    CLI::App app{"hostprof: continuous CPU profiles and kernel latency metrics from eBPF"};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string("hostprof ") + HOSTPROF_VERSION);

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

    std::map<std::string, std::string> record_flags;
    hostprof::RecordOptions record_opts;
    uint32_t record_pid = 0;
    CLI::App* record =
        app.add_subcommand("record", "Record one profile to a file (perf record style)");
    record->add_option("--config", config_file, "YAML configuration file")->type_name("FILE");
    record->add_option("-o,--output", record_opts.output, "Output file")->type_name("FILE");
    record
        ->add_option(
            "--format", record_opts.format,
            "pprof (gzipped), folded, html or otlp (an OTLP profiles export request, protobuf)")
        ->type_name("FORMAT");
    record->add_option("--pid", record_pid, "Only this process (filtered in the kernel)")
        ->type_name("PID");
    record->add_option("--cgroup", record_opts.cgroup, "Only processes under this cgroup path");
    record->add_option("--container", record_opts.container, "Only this container id (prefix)");
    record->add_option("--service", record_opts.service, "Only this service_name");
    record->add_option("--comm", record_opts.comm, "Only processes whose comm matches");
    record->add_flag("--off-cpu", record_opts.off_cpu, "Record off-CPU (blocked) time");
    add_setting_flags(record, record_flags);

    CLI::App* ref = app.add_subcommand("config-reference", "Print the configuration reference");

    hostprof::SymbolizeArgs sym_args;
    CLI::App* symbolize = app.add_subcommand("symbolize", "Print the frames of addresses");
    symbolize->add_option("--pid", sym_args.pid, "Process addresses of this live process");
    symbolize->add_option("--elf", sym_args.elf, "ELF virtual addresses of this file");
    symbolize->add_flag("--kernel", sym_args.kernel, "Kernel addresses (kallsyms)");
    symbolize->add_flag("--no-demangle", sym_args.no_demangle, "Keep mangled names");
    symbolize->add_flag("--no-inlines", sym_args.no_inlines, "No inline frames");
    symbolize->add_flag("--no-dwarf", sym_args.no_dwarf, "Symbol tables only");
    symbolize
        ->add_option("--debuginfod-urls", sym_args.debuginfod_urls,
                     "Fetch missing debug files from these debuginfod servers")
        ->delimiter(',')
        ->type_name("URL,...");
    symbolize
        ->add_option("--debuginfod-cache-dir", sym_args.debuginfod_cache_dir,
                     "Where fetched debug files are kept")
        ->type_name("DIR");
    symbolize->add_option("ADDR", sym_args.addresses, "Hex addresses")->required();

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }

    if (ref->parsed()) {
        std::fputs(hostprof::config_reference_markdown().c_str(), stdout);
        return 0;
    }
    if (symbolize->parsed())
        return hostprof::run_symbolize(sym_args);
    CLI::App* cmd = run->parsed() ? run : record->parsed() ? record : probe;
    auto config = build_config(config_file,
                               run->parsed()      ? run_flags
                               : record->parsed() ? record_flags
                                                  : probe_flags,
                               cmd);
    if (!config) {
        std::fprintf(stderr, "hostprof: configuration error: %s\n",
                     config.error().message().c_str());
        return 2;
    }
    if (!probe->parsed())
        if (hostprof::Status st = hostprof::check_host_limits(config.value()); !st) {
            std::fprintf(stderr, "hostprof: configuration error: %s\n",
                         st.error().message().c_str());
            return 2;
        }
    hostprof::init_logging(config->log_format, config->log_level);
    if (probe->parsed())
        return hostprof::run_probe(config.value(), json);
    if (record->parsed()) {
        if (record_pid != 0)
            record_opts.pid = record_pid;
        return hostprof::run_record(config.value(), record_opts);
    }
    return hostprof::run_agent(config.value());
}

} // namespace

int main(int argc, char** argv) {
    // The last resort: an exception no layer handled (std::bad_alloc, a filesystem error)
    // ends the agent with one readable line and a failure status instead of an abort.
    try {
        return run_main(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "hostprof: fatal: %s\n", e.what());
    } catch (...) {
        std::fprintf(stderr, "hostprof: fatal: unknown exception\n");
    }
    return 1;
}
