#pragma once
// Choosing, per shape and processor, between a convolution op's own kernel and its dense
// alternative (oneDNN's convolution of the masked weight). Which one is faster depends on the
// processor (vector width, clock, cache) as much as on the shape, so under the default policy
// "auto" both are timed once, the first time a shape is seen, and the faster one is kept for that
// shape (in this process; gen_ext.ops.conv_path_choices() reads the choices and a training
// checkpoint stores them, so a resumed run computes exactly as the uninterrupted one would).
// The policies "kernel" and "dense" force one path (the environment variable GEN_EXT_CONV_PATH
// sets the policy for the process; set_conv_path_policy overrides it).
#include <functional>
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

// The path for the call's shape: the policy's, or under "auto" the faster of the two (each run
// twice, the second run timed, the first time the shape is seen). key() names the shape; it is
// called only under "auto", so a forced policy costs no string per call.
ConvPath choose_conv_path(const std::function<std::string()>& key,
                          const std::function<void()>& run_kernel,
                          const std::function<void()>& run_dense);

// The choices made so far, as "key=kernel" / "key=dense" lines, and the way back.
std::vector<std::string> conv_path_choices();
void set_conv_path_choices(const std::vector<std::string>& choices);

}  // namespace cpu
}  // namespace gen_ext
