/* zerolab public API: include this one header.
 * Compile with `pkg-config --cflags zerolab`; link with `pkg-config --libs --static zerolab`. */
#ifndef ZEROLAB_H
#define ZEROLAB_H

#include "backends/ops.h"
#include "base/dtype.h"
#include "base/log.h"
#include "base/rng.h"
#include "base/status.h"
#include "ckpt/ckpt_tools.h"
#include "ckpt/safetensors.h"
#include "comm/topology.h"
#include "config/config.h"
#include "config/optim_settings.h"
#include "core/device.h"
#include "core/tensor.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "engine/engine.h"
#include "model/gpt_config.h"
#include "model/model.h"
#include "optim/adamw.h"
#include "optim/lr_schedule.h"
#include "optim/param_range.h"
#include "plan/plan.h"
#include "run/run.h"
#include "sim/cost.h"
#include "sim/ledger.h"
#include "zero/loss_scaler.h"
#include "zero/partition.h"

#endif
