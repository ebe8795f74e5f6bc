#pragma once
// Every op family's CPU kernels, for the per-instruction-set files kernels_<isa>.cpp.
#include "concat_elu_kernel_impl.h"
#include "diagonal_lstm_kernel_impl.h"
#include "dlm_kernel_impl.h"
#include "gated_kernel_impl.h"
#include "gaussian_kernel_impl.h"
#include "langevin_kernel_impl.h"
#include "masked_conv_kernel_impl.h"
#include "wavenet_step_kernel_impl.h"
