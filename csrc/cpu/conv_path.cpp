// The per-shape choice between a convolution's own kernel and its dense alternative
// (conv_path.h).
#include "conv_path.h"

#include <c10/util/Exception.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>

namespace gen_ext {
namespace cpu {
namespace {

std::mutex& lock() {
  static std::mutex m;
  return m;
}
std::map<std::string, ConvPath>& choices() {
  static std::map<std::string, ConvPath> c;
  return c;
}
std::string& policy_override() {  // empty: the environment's policy
  static std::string p;
  return p;
}

void check_policy(const std::string& policy, const char* where) {
  TORCH_CHECK_VALUE(policy == "auto" || policy == "kernel" || policy == "dense", where,
              ": the convolution path policy must be 'auto', 'kernel' or 'dense', got '", policy,
              "'");
}

const char* name(ConvPath path) { return path == ConvPath::kKernel ? "kernel" : "dense"; }

}  // namespace

std::string conv_path_policy() {
  std::lock_guard<std::mutex> guard(lock());
  if (!policy_override().empty()) return policy_override();
  const char* env = std::getenv("GEN_EXT_CONV_PATH");
  if (env == nullptr || *env == '\0') return "auto";
  check_policy(env, "GEN_EXT_CONV_PATH");
  return env;
}

std::string set_conv_path_policy(const std::string& policy) {
  if (!policy.empty()) check_policy(policy, "set_conv_path_policy");
  std::lock_guard<std::mutex> guard(lock());
  const std::string previous = policy_override();
  policy_override() = policy;
  return previous;
}

std::optional<ConvPath> recorded_conv_path(const std::string& key) {
  std::lock_guard<std::mutex> guard(lock());
  const auto found = choices().find(key);
  if (found == choices().end()) return std::nullopt;
  return found->second;
}

ConvPath record_conv_path(const std::string& key, ConvPath path) {
  std::lock_guard<std::mutex> guard(lock());
  return choices().emplace(key, path).first->second;
}

double seconds_to_run(const std::function<void()>& run) {
  const auto start = std::chrono::steady_clock::now();
  run();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::vector<std::string> conv_path_choices() {
  std::lock_guard<std::mutex> guard(lock());
  std::vector<std::string> out;
  for (const auto& [key, path] : choices()) out.push_back(key + "=" + name(path));
  return out;
}

void set_conv_path_choices(const std::vector<std::string>& lines) {
  std::map<std::string, ConvPath> parsed;
  for (const auto& line : lines) {
    const auto eq = line.rfind('=');
    const std::string value = eq == std::string::npos ? "" : line.substr(eq + 1);
    TORCH_CHECK_VALUE(value == "kernel" || value == "dense",
                "set_conv_path_choices: each choice must read 'shape=kernel' or 'shape=dense', "
                "got '", line, "'");
    parsed[line.substr(0, eq)] = value == "kernel" ? ConvPath::kKernel : ConvPath::kDense;
  }
  std::lock_guard<std::mutex> guard(lock());
  for (const auto& [key, path] : parsed) choices()[key] = path;
}

}  // namespace cpu
}  // namespace gen_ext
