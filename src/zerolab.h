/* zerolab public API: include this one header.
 * Compile with `pkg-config --cflags zerolab`; link with `pkg-config --libs --static zerolab`. */
#ifndef ZEROLAB_H
#define ZEROLAB_H

#include "base/status.h"
#include "base/log.h"
#include "base/dtype.h"
#include "base/rng.h"
#include "core/device.h"
#include "core/tensor.h"
#include "sim/ledger.h"
#include "backends/ops.h"
#include "model/model.h"
#include "model/gpt_config.h"
#include "config/optim_settings.h"
#include "optim/param_range.h"
#include "optim/adamw.h"
#include "optim/lr_schedule.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "config/config.h"
#include "engine/engine.h"
#include "run/run.h"

#endif
