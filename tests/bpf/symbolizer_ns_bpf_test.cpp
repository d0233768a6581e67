// A process in another mount namespace symbolizes: its binary lives only in a private
// tmpfs of that namespace, so only /proc/PID/root/... reaches it. And files planted in such
// a namespace cannot make the symbolizer read host files or block (issue #8).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "bpf_test_util.h"
#include "symbolizer/symbolizer.h"

namespace hostprof::sym {
namespace {

TEST(SymbolizerNamespaces, ProcessInAnotherMountNamespaceSymbolizes) {
    HOSTPROF_REQUIRE_ROOT();
    const std::string prog = std::string(HOSTPROF_TESTPROGS_DIR) + "/sym_target";
    ASSERT_TRUE(std::filesystem::exists(prog));
    const std::string dir = "/tmp/hostprof-ns-" + std::to_string(::getpid());
    const std::string out = dir + ".out";
    std::filesystem::create_directories(dir);
    // In a new mount namespace: a tmpfs over `dir`, the program copied into it, run from it
    // with stdin held open by a sleep so it stays alive until we kill the group.
    const std::string script = "mount -t tmpfs none " + dir + " && cp " + prog + " " + dir +
                               "/nsprog && exec " + dir + "/nsprog > " + out + " < <(sleep 30)";
    pid_t child = ::fork();
    if (child == 0) {
        ::setpgid(0, 0);
        ::execlp("unshare", "unshare", "-m", "--propagation", "private", "bash", "-c",
                 script.c_str(), nullptr);
        ::_exit(127);
    }
    ASSERT_GT(child, 0);
    std::map<std::string, uint64_t> functions;
    for (int i = 0; i < 100 && functions.size() < 3; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        std::ifstream in(out);
        std::string name, addr;
        functions.clear();
        while (in >> name >> addr)
            functions[name] = std::stoull(addr, nullptr, 16);
    }
    ASSERT_EQ(functions.size(), 3u) << "target did not start";
    // Not visible from our mount namespace: the directory is empty here.
    EXPECT_FALSE(std::filesystem::exists(dir + "/nsprog"));

    Symbolizer s(SymbolizerOptions{});
    const uint32_t pid = static_cast<uint32_t>(child); // exec'd in place by unshare and bash
    s.process_seen(pid);
    for (const auto& [name, addr] : functions) {
        FrameResult r = s.user(pid, addr);
        ASSERT_FALSE(r.frames.empty()) << name << ": " << miss_reason_name(r.miss);
        EXPECT_EQ(r.frames.back().function, name);
        EXPECT_EQ(r.module, dir + "/nsprog");
    }
    ::kill(-child, SIGKILL);
    int st;
    ::waitpid(child, &st, 0);
    std::filesystem::remove_all(dir);
    std::filesystem::remove(out);
}

// What a hostile process plants as its perf map, inside its own private root.
enum class Plant { SymlinkToHostFile, Fifo, HugeSparse, TmpSymlinkedOut, Genuine };

// A child in a new mount namespace, chrooted into a private tmpfs holding only what it
// planted; returns its pid once it is ready (it then waits to be killed).
pid_t start_planted(Plant plant, const std::string& mountpoint, const std::string& host_dir) {
    int ready[2];
    if (::pipe2(ready, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = ::fork();
    if (pid != 0) {
        ::close(ready[1]);
        char c = 0;
        bool ok = pid > 0 && ::read(ready[0], &c, 1) == 1 && c == 'y';
        ::close(ready[0]);
        if (!ok && pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
            return -1;
        }
        return pid;
    }
    ::close(ready[0]);
    auto die = [&] { ::_exit(100 + static_cast<int>(plant)); };
    if (::unshare(CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("none", mountpoint.c_str(), "tmpfs", 0, "size=1m") != 0)
        die();
    const std::string map_name = "perf-" + std::to_string(::getpid()) + ".map";
    const std::string tmp = mountpoint + "/tmp";
    // The host file (outside the tmpfs) with names that must never show up.
    const std::string host_map = host_dir + "/" + map_name;
    {
        int fd = ::open(host_map.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
        const char text[] = "1000 1000 HOSTSECRET_function\n";
        if (fd < 0 || ::write(fd, text, sizeof text - 1) != sizeof text - 1)
            die();
        ::close(fd);
    }
    if (plant == Plant::TmpSymlinkedOut) {
        // /tmp itself climbs out of the root: ../../../.. then the host directory.
        if (::symlink(("../../../../../../.." + host_dir).c_str(), tmp.c_str()) != 0)
            die();
    } else if (::mkdir(tmp.c_str(), 01777) != 0) {
        die();
    }
    const std::string planted = tmp + "/" + map_name;
    switch (plant) {
    case Plant::SymlinkToHostFile:
        if (::symlink(host_map.c_str(), planted.c_str()) != 0)
            die();
        break;
    case Plant::Fifo:
        if (::mkfifo(planted.c_str(), 0644) != 0)
            die();
        break;
    case Plant::HugeSparse: {
        int fd = ::open(planted.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        if (fd < 0 || ::ftruncate(fd, 10ll << 30) != 0) // 10 GiB, no blocks
            die();
        ::close(fd);
        break;
    }
    case Plant::Genuine: {
        int fd = ::open(planted.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        const char text[] = "1000 1000 INSIDE_function\n";
        if (fd < 0 || ::write(fd, text, sizeof text - 1) != sizeof text - 1)
            die();
        ::close(fd);
        break;
    }
    case Plant::TmpSymlinkedOut:
        break;
    }
    if (::chroot(mountpoint.c_str()) != 0 || ::chdir("/") != 0)
        die();
    if (::write(ready[1], "y", 1) != 1)
        die();
    for (;;)
        ::pause();
}

TEST(SymbolizerNamespaces, PlantedPerfMapsReadNoHostFileNeverBlockAndAreCounted) {
    HOSTPROF_REQUIRE_ROOT();
    // Watchdog, not a timing assertion: a blocked open/read would hang here forever.
    ::alarm(120);
    const std::string base = "/tmp/hostprof-plant-" + std::to_string(::getpid());
    const std::string host_dir = base + "-host";
    std::filesystem::create_directories(host_dir);
    struct Case {
        Plant plant;
        const char* name;
        OpenRefusal counted; // the reason the perf map open must be counted under
    };
    const Case cases[] = {
        {Plant::SymlinkToHostFile, "symlink to a host file", OpenRefusal::Symlink},
        {Plant::Fifo, "FIFO", OpenRefusal::NotRegular},
        {Plant::HugeSparse, "10 GiB sparse file", OpenRefusal::TooLarge},
        // In the root, /tmp -> ../../tmp/X names itself again: a loop (ELOOP); the
        // fallback walk refuses the symlinked /tmp outright. Either way: "symlink".
        {Plant::TmpSymlinkedOut, "/tmp symlinked out of the root", OpenRefusal::Symlink},
        {Plant::Genuine, "genuine perf map (control)", OpenRefusal::None},
    };
    for (bool fallback : {false, true}) {
        for (const Case& c : cases) {
            SCOPED_TRACE(std::string(c.name) + (fallback ? " (fallback walk)" : " (openat2)"));
            const std::string mnt = base + "-" + std::to_string(static_cast<int>(c.plant));
            std::filesystem::create_directories(mnt);
            pid_t pid = start_planted(c.plant, mnt, host_dir);
            ASSERT_GT(pid, 0) << "could not start the planted process";
            // The host file exists and has the secret name: reading it would show.
            const std::string host_map = host_dir + "/perf-" + std::to_string(pid) + ".map";
            ASSERT_TRUE(std::filesystem::exists(host_map));

            SymbolizerOptions o;
            o.force_open_fallback = fallback;
            Symbolizer s(o);
            s.process_seen(static_cast<uint32_t>(pid));
            FrameResult r = s.user(static_cast<uint32_t>(pid), 0x1800);
            SymbolizerStats st = s.stats();
            for (const auto& f : r.frames)
                EXPECT_EQ(f.function.find("HOSTSECRET"), std::string::npos) << f.function;
            if (c.plant == Plant::Genuine) {
                ASSERT_EQ(r.frames.size(), 1u) << miss_reason_name(r.miss);
                EXPECT_EQ(r.frames[0].function, "INSIDE_function");
                EXPECT_EQ(r.module, "[jit]");
            } else {
                EXPECT_TRUE(r.frames.empty());
                EXPECT_EQ(r.miss, MissReason::NoMapping);
            }
            // Refusals are exactly the planted file's (the test binary itself is not inside
            // the root: it is missing there and symbolizes through map_files).
            // A checkout under /tmp (CI clones may live there) puts the test binary's path
            // through the planted /tmp symlink too: one more symlink refusal, never fewer.
            const bool binary_in_tmp = std::string(HOSTPROF_TESTPROGS_DIR).rfind("/tmp/", 0) == 0;
            for (int i = 2; i < kOpenRefusalCount; ++i) {
                const uint64_t want = static_cast<int>(c.counted) == i ? 1 : 0;
                const std::string name = open_refusal_name(static_cast<OpenRefusal>(i));
                const uint64_t extra = binary_in_tmp && name == "symlink" ? 1 : 0;
                EXPECT_GE(st.open_failures[i], want) << name;
                EXPECT_LE(st.open_failures[i], want + extra) << name;
            }
            EXPECT_EQ(st.open_fallback_walks > 0, fallback);
            // Its own code still symbolizes (through PROC/PID/map_files).
            FrameResult own =
                s.user(static_cast<uint32_t>(pid), reinterpret_cast<uint64_t>(&start_planted));
            ASSERT_FALSE(own.frames.empty()) << miss_reason_name(own.miss);
            EXPECT_NE(own.frames.back().function.find("start_planted"), std::string::npos);

            ::kill(pid, SIGKILL);
            int status = 0;
            ::waitpid(pid, &status, 0);
            std::filesystem::remove(mnt);
        }
    }
    std::filesystem::remove_all(host_dir);
    ::alarm(0);
}

} // namespace
} // namespace hostprof::sym
