// The MLP epoch of bench/mlp-epoch.ts as a plain C++ loop over libtorch (no JS, no Python): the
// floor any binding can reach. bench/run.sh builds it (bench/cpp/build.sh) and bench/mlp-epoch.ts
// runs it as a third engine when built; by hand: bash bench/cpp/build.sh && build/bench/mlp_epoch
// Prints one JSON line in the workers' format (engine "cpp").
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>
#include <zlib.h>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

static std::vector<uint8_t> readGz(const std::string& path, size_t skip) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error("cannot open " + path);
  std::vector<uint8_t> out;
  uint8_t buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + n);
  gzclose(f);
  return std::vector<uint8_t>(out.begin() + skip, out.end());
}

static double cpuSeconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main() {
  at::set_num_threads(1);
  at::manual_seed(0);
  const char* env = std::getenv("TOPIARY_DATA");
  std::string root = env ? env : "../shared/datasets";
  auto img = readGz(root + "/mnist/train-images-idx3-ubyte.gz", 16);
  auto lab = readGz(root + "/mnist/train-labels-idx1-ubyte.gz", 8);
  const int64_t n = static_cast<int64_t>(lab.size()), B = 128;
  at::Tensor x = at::from_blob(img.data(), {n, 784}, at::kByte).to(at::kFloat).mul_(1.0 / 255).sub_(0.1307).div_(0.3081);
  at::Tensor y = at::from_blob(lab.data(), {n}, at::kByte).to(at::kLong);

  const int64_t sizes[] = {784, 512, 256, 10};
  std::vector<at::Tensor> params;
  for (int i = 0; i < 3; i++) {
    double b = 1 / std::sqrt(static_cast<double>(sizes[i]));
    params.push_back(at::rand({sizes[i + 1], sizes[i]}).mul_(2 * b).sub_(b).requires_grad_(true));
    params.push_back(at::rand({sizes[i + 1]}).mul_(2 * b).sub_(b).requires_grad_(true));
  }
  auto step = [&](const at::Tensor& xb, const at::Tensor& yb) {
    at::Tensor h = at::relu(at::linear(xb, params[0], params[1]));
    h = at::relu(at::linear(h, params[2], params[3]));
    at::Tensor loss = at::cross_entropy_loss(at::linear(h, params[4], params[5]), yb);
    for (auto& p : params) p.mutable_grad() = at::Tensor();
    loss.backward();
    at::NoGradGuard ng;
    for (auto& p : params) p.add_(p.grad(), -0.05);
  };
  for (int i = 0; i < 5; i++) step(x.narrow(0, i * B, B), y.narrow(0, i * B, B));

  double c0 = cpuSeconds();
  auto t0 = std::chrono::steady_clock::now();
  at::Tensor perm = at::randperm(n);
  for (int64_t i = 0; i < n; i += B) {
    at::Tensor idx = perm.narrow(0, i, std::min(B, n - i));
    step(x.index_select(0, idx), y.index_select(0, idx));
  }
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double cpu = cpuSeconds() - c0;
  double loss;
  {
    at::NoGradGuard ng;
    at::Tensor h = at::relu(at::linear(at::relu(at::linear(x, params[0], params[1])), params[2], params[3]));
    loss = at::cross_entropy_loss(at::linear(h, params[4], params[5]), y).item<double>();
  }
  std::printf("{\"engine\":\"cpp\",\"threads\":%d,\"epochSeconds\":%.6f,\"epochCpuSeconds\":%.6f,\"trainLoss\":%.8f}\n",
              at::get_num_threads(), wall, cpu, loss);
  return 0;
}
