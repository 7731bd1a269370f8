# End-to-end: tokenize a small English text, train a small RAT+ jointly for 60
# iterations with validation, evaluate the result dense and at D = 4, and require a
# clearly falling loss. Arguments: RATRAIN, WORK (scratch folder), CONFIG, TEXT.
file(REMOVE_RECURSE ${WORK})

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message(STATUS "${out}${err}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGN}")
  endif()
endfunction()

run(${RATRAIN} tokenize --input ${TEXT} --output ${WORK}/data --val-fraction 0.05)
run(${RATRAIN} train ${CONFIG} data.train=${WORK}/data/train.h5 data.val=${WORK}/data/val.h5
    model.d_model=64 model.num_layers=2 model.dilation=4 train.seq_len=64 train.batch_size=4
    train.iters=60 eval.every=20 eval.batches=4 optim.lr=3e-3 run.dir=${WORK}/run run.log_every=20)
run(${RATRAIN} eval ${CONFIG} data.val=${WORK}/data/val.h5 model.weights=${WORK}/run/model.h5
    model.d_model=64 model.num_layers=2 model.dilation=4 train.seq_len=64 train.batch_size=4
    eval.batches=4 run.dir=${WORK}/eval)

foreach(f run/config.ini run/model.h5 eval/eval.jsonl)
  if(NOT EXISTS ${WORK}/${f})
    message(FATAL_ERROR "missing output ${WORK}/${f}")
  endif()
endforeach()

# Loss at the first iteration (about ln 259 = 5.56 for bytes) against the last
# validation pass: 60 iterations of joint training must cut it by a third or more.
file(STRINGS ${WORK}/run/metrics.jsonl lines)
list(GET lines 0 first)
string(JSON first_loss GET "${first}" loss_dense)
set(last_val "")
foreach(line ${lines})
  string(JSON event GET "${line}" event)
  if(event STREQUAL "val")
    string(JSON last_val GET "${line}" val_loss_dense)
  endif()
endforeach()
message(STATUS "first training loss ${first_loss}, last validation loss ${last_val}")
if(last_val STREQUAL "" OR NOT last_val LESS 3.7)
  message(FATAL_ERROR "validation loss ${last_val} did not fall below 3.7 (start ${first_loss})")
endif()
