// segforge: the engine's command line. Each subcommand lives in tools/cmd_*.cpp; this file
// dispatches and maps errors to exit codes: InputError and CLI11 parse errors print one line
// and exit 2; runtime failures exit 1.
//
// Under MPI (a build with SEGFORGE_MPI, started by mpirun/mpiexec/srun): every rank runs the same
// command; rank 0 prints and writes the outputs; an error ends every rank with the same status
// and one message (mpi::finish).

#include <CLI/CLI.hpp>
#include <signal.h>
#include <atomic>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <new>
#include <set>

#include "cli_common.hpp"
#include "segforge/error.hpp"

#if defined(SEGFORGE_HAS_MPI)
#include "distributed.hpp"
#endif

#ifndef SEGFORGE_VERSION
#define SEGFORGE_VERSION "0.1.0"
#endif

namespace {

#if defined(SEGFORGE_HAS_MPI)
/// The subcommands that run under MPI; the others would write their outputs from every process.
const std::set<std::string> kParallelCommands = {"fit", "predict", "sweep", "score"};
#else
/// Started by an MPI launcher with more than one process (this build cannot join them).
bool launched_as_many() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"})
    if (const char* v = std::getenv(name); v != nullptr && std::atoi(v) > 1) return true;
  return false;
}
#endif

/// The exit status and message of a failed command (std::current_exception()).
int describe(std::exception_ptr error, std::string& message) {
  try {
    std::rethrow_exception(error);
  } catch (const segforge::Error& e) {
    message = e.what();
    return e.exit_code();
  } catch (const std::bad_alloc&) {
    message = "out of memory; use a machine with more memory or a smaller input";
    return 1;
  } catch (const std::exception& e) {
    message = e.what();
    return 1;
  }
}

int run(int argc, char** argv, std::string& message) {
  using namespace segforge::cli;
  CLI::App app{"segforge: GPU-accelerated customer segmentation (K-Means, silhouette, distances)"};
  app.set_version_flag("--version", std::string("segforge ") + SEGFORGE_VERSION);
  app.require_subcommand(1);
  const std::vector<Command> commands = {
      add_fit_command(app),       add_predict_command(app), add_score_command(app),
      add_distances_command(app), add_info_command(app),    add_synth_command(app),
      add_sweep_command(app),     add_stability_command(app), add_report_command(app),
      add_drift_command(app),
      add_refresh_command(app),
      add_kpis_command(app),
      add_dbscan_eps_command(app),
  };
  try {
    app.parse(argc, argv);
    for (const Command& c : commands) {
      if (!*c.app) continue;
#if defined(SEGFORGE_HAS_MPI)
      if (segforge::mpi::size() > 1 && kParallelCommands.count(c.app->get_name()) == 0)
        throw segforge::InputError("segforge " + c.app->get_name() +
                                   " runs in one process; start it without mpirun/srun "
                                   "(fit, predict, sweep and score run under MPI)");
#else
      if (launched_as_many())
        throw segforge::InputError(
            "this segforge was built without MPI (SEGFORGE_MPI=OFF or no MPI found), so its "
            "processes cannot work together; start it without mpirun/srun, or rebuild with MPI");
#endif
      return c.run();
    }
  } catch (const CLI::ParseError& e) {
    // Help, version and usage errors: CLI11 prints them, once.
    const int code = output_rank() ? app.exit(e) : e.get_exit_code();
    return code == 0 ? 0 : 2;
  } catch (...) {
    return describe(std::current_exception(), message);
  }
  return 0;
}

}  // namespace

/// Out of core, a window of a contiguous file is mapped from the file (RowSource::map): if another
/// program truncates the file meanwhile, touching the lost pages raises SIGBUS. One line and
/// status 1, as for any failure to read, instead of a crash.
extern "C" void on_bus_error(int) {
  static std::atomic<bool> reported{false};  // lock-free: safe in a handler
  if (reported.exchange(true))  // another thread hit it too: the first one reports and exits
    for (;;) ::pause();
  static const char kMessage[] =
      "segforge: an input file shrank while it was being read (its rows mapped out of core); "
      "rerun when no other program writes it\n";
  [[maybe_unused]] const auto written = ::write(2, kMessage, sizeof kMessage - 1);
  ::_exit(1);
}

int main(int argc, char** argv) {
  struct sigaction bus = {};
  bus.sa_handler = on_bus_error;
  sigemptyset(&bus.sa_mask);
  sigaction(SIGBUS, &bus, nullptr);
#if defined(SEGFORGE_HAS_MPI)
  segforge::mpi::Session session(argc, argv);
  std::string message;
  const int status = run(argc, argv, message);
  return segforge::mpi::finish(status, message);
#else
  std::string message;
  const int status = run(argc, argv, message);
  if (status != 0 && !message.empty()) std::cerr << "segforge: " << message << '\n';
  return status;
#endif
}
