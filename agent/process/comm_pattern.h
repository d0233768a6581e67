// The comm filter of the profile endpoints and `record --comm`: a POSIX extended regular
// expression matched against a process's comm (at most 15 bytes).
//
// Patterns come from HTTP clients, so matching must take bounded time: std::regex
// backtracks (the query fuzzer found a 30-byte pattern that ran for minutes on a 15-byte
// comm, stalling the thread that aggregates samples). glibc's regexec without
// back-references (REG_NOSUB) simulates an automaton instead of backtracking; patterns with
// back-references or {m,n} intervals (which multiply the automaton) are refused, as are
// patterns longer than kMaxCommPatternBytes or nested deeper than kMaxCommPatternDepth.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"

namespace hostprof {

inline constexpr size_t kMaxCommPatternBytes = 128;
inline constexpr int kMaxCommPatternDepth = 16;

class CommPattern {
  public:
    static Result<CommPattern> compile(std::string_view pattern);
    // True when the pattern matches anywhere in `comm` (a search, like grep -E).
    bool matches(const std::string& comm) const;
    const std::string& pattern() const { return pattern_; }

  private:
    struct Compiled;
    std::shared_ptr<const Compiled> re_; // immutable after compile; regexec is thread-safe
    std::string pattern_;
};

} // namespace hostprof
