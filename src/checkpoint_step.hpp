#pragma once
// The drivers' side of checkpointing (include/segforge/checkpoint.hpp): at a step boundary,
// save when the interval is due or a stop was asked for, and stop by throwing Interrupted.

#include <cstdint>
#include <string>

#include "segforge/checkpoint.hpp"
#include "segforge/error.hpp"

namespace segforge::detail {

/// Call before step `step` of a phase (steps count from 0 within the phase). `make_state`
/// builds the FitState; it is called only when a save is due.
template <class MakeState>
void checkpoint_boundary(const Checkpointing* cp, std::int64_t step, MakeState&& make_state) {
  if (cp == nullptr) return;
  const bool stop = cp->stop_requested && cp->stop_requested();
  const bool due = cp->every > 0 && step > 0 && step % cp->every == 0;
  if (!stop && !due) return;
  FitState state = make_state();
  state.settings = cp->settings;
  if (cp->save) cp->save(state);
  if (stop)
    throw Interrupted("stopped on request before " + state.algorithm + " " + state.phase +
                      (state.phase == "runs" ? " (run " + std::to_string(state.run) + ")" : "") +
                      " step " + std::to_string(state.step) +
                      (cp->path.empty() ? std::string()
                                        : "; checkpoint written to " + cp->path +
                                              "; continue with --resume " + cp->path));
}

}  // namespace segforge::detail
