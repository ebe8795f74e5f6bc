#pragma once
// Choosing, per shape and processor, between a convolution op's own kernel and its dense
// alternative (oneDNN's convolution of the masked weight). Which one is faster depends on the
// processor (vector width, clock, cache) as much as on the shape, so under the default policy
// "auto" both are timed the first time a shape is seen (run_on_conv_path below), and the faster
// one is kept for that shape, the dense path on a near tie (in this process; gen_ext.ops.conv_path_choices() reads the choices and a training
// checkpoint stores them, so a resumed run computes exactly as the uninterrupted one would).
// The policies "kernel" and "dense" force one path (the environment variable GEN_EXT_CONV_PATH
// sets the policy for the process; set_conv_path_policy overrides it).
#include <algorithm>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace gen_ext {
namespace cpu {

enum class ConvPath { kKernel, kDense };

// Sets "auto", "kernel" or "dense" over the environment's policy, or "" to go back to the
// environment's; returns the setting it replaces ("" where there was none).
std::string set_conv_path_policy(const std::string& policy);
// The policy in force: the one set, else GEN_EXT_CONV_PATH's, else "auto".
std::string conv_path_policy();

// The choice recorded for a shape, if any, and recording one (a concurrent first choice wins:
// the one recorded is returned).
std::optional<ConvPath> recorded_conv_path(const std::string& key);
ConvPath record_conv_path(const std::string& key, ConvPath path);
double seconds_to_run(const std::function<void()>& run);

// Runs the call on its path and returns its result. dense() returns the dense alternative's
// result, or nothing where it would not be exact for these values (the call then runs kernel()).
// The path is the policy's, or under "auto" the one recorded for the shape (key() names it;
// called only under "auto", so a forced policy costs no string per call).
//
// The first call of a shape runs each path once to pay one-time costs (allocation, oneDNN's
// primitive creation), then kTimedRuns more each, alternating, and records the kernel only where
// its fastest run beats the dense path's by kKernelMargin: one run each flipped the choice of
// near-equal paths from process to process (the shifted convolution's backward at 8x160x32x32,
// kernel and dense within 5% of each other), and where they are that close the dense path, the
// plain convolution a user would otherwise call, is the one a layer must never be slower than.
// A dense run that is not exact records nothing: its time would be that of a check, not of the
// convolution.
constexpr int kTimedRuns = 3;
constexpr double kKernelMargin = 0.97;

template <typename Result, typename Key, typename Kernel, typename Dense>
Result run_on_conv_path(const Key& key, const Kernel& kernel, const Dense& dense) {
  const std::string policy = conv_path_policy();
  std::string shape;
  std::optional<ConvPath> path;
  if (policy != "auto") {
    path = policy == "kernel" ? ConvPath::kKernel : ConvPath::kDense;
  } else {
    shape = key();
    path = recorded_conv_path(shape);
  }
  if (path.has_value()) {
    if (*path == ConvPath::kDense) {
      std::optional<Result> out = dense();
      if (out.has_value()) return std::move(*out);
    }
    return kernel();
  }
  Result kernel_out = kernel();
  std::optional<Result> dense_out = dense();
  if (!dense_out.has_value()) return kernel_out;
  double kernel_s = 0, dense_s = 0;
  for (int run = 0; run < kTimedRuns; ++run) {
    const double k = seconds_to_run([&] { kernel_out = kernel(); });
    const double d = seconds_to_run([&] { dense_out = dense(); });
    kernel_s = run == 0 ? k : std::min(kernel_s, k);
    dense_s = run == 0 ? d : std::min(dense_s, d);
  }
  const ConvPath chosen = record_conv_path(
      shape, kernel_s < kKernelMargin * dense_s ? ConvPath::kKernel : ConvPath::kDense);
  if (chosen == ConvPath::kDense && dense_out.has_value()) return std::move(*dense_out);
  return kernel_out;
}

// The choices made so far, as "key=kernel" / "key=dense" lines, and the way back.
std::vector<std::string> conv_path_choices();
void set_conv_path_choices(const std::vector<std::string>& choices);

}  // namespace cpu
}  // namespace gen_ext
