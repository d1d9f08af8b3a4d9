// segforge: the engine's command line. Each subcommand lives in tools/cmd_*.cpp; this file
// dispatches and maps errors to exit codes: InputError and CLI11 parse errors print one line
// and exit 2; runtime failures exit 1.

#include <CLI/CLI.hpp>
#include <iostream>
#include <new>

#include "cli_common.hpp"
#include "segforge/error.hpp"

#ifndef SEGFORGE_VERSION
#define SEGFORGE_VERSION "0.1.0"
#endif

int main(int argc, char** argv) {
  using namespace segforge::cli;
  CLI::App app{"segforge: GPU-accelerated customer segmentation (K-Means, silhouette, distances)"};
  app.set_version_flag("--version", std::string("segforge ") + SEGFORGE_VERSION);
  app.require_subcommand(1);
  const std::vector<Command> commands = {
      add_fit_command(app),       add_predict_command(app), add_score_command(app),
      add_distances_command(app), add_info_command(app),    add_synth_command(app),
      add_sweep_command(app),     add_stability_command(app), add_report_command(app),
  };
  try {
    app.parse(argc, argv);
    for (const Command& c : commands)
      if (*c.app) return c.run();
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  } catch (const segforge::Error& e) {
    std::cerr << "segforge: " << e.what() << '\n';
    return e.exit_code();
  } catch (const std::bad_alloc&) {
    std::cerr << "segforge: out of memory; use a machine with more memory or a smaller input\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "segforge: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
