#include "agent/host/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <nlohmann/json.hpp>

namespace hostprof {
namespace {

class JsonFormatter final : public spdlog::formatter {
  public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
        using namespace std::chrono;
        auto ms = duration_cast<milliseconds>(msg.time.time_since_epoch()).count();
        nlohmann::json j = {
            {"ts", static_cast<double>(ms) / 1000.0},
            {"level", std::string(spdlog::level::to_string_view(msg.level).data(),
                                  spdlog::level::to_string_view(msg.level).size())},
            {"msg", std::string(msg.payload.data(), msg.payload.size())},
        };
        std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        line += '\n';
        dest.append(line.data(), line.data() + line.size());
    }
    std::unique_ptr<spdlog::formatter> clone() const override {
        return std::make_unique<JsonFormatter>();
    }
};

} // namespace

void init_logging(const std::string& format, const std::string& level) {
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    auto logger = std::make_shared<spdlog::logger>("hostprof", sink);
    if (format == "json")
        logger->set_formatter(std::make_unique<JsonFormatter>());
    else
        logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v");
    logger->set_level(spdlog::level::from_str(level));
    logger->flush_on(spdlog::level::trace);
    spdlog::set_default_logger(logger);
}

} // namespace hostprof
