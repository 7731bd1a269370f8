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

# The validation pass before training (about ln 259 = 5.56 for bytes) against the
# last one: 60 iterations of joint training must cut the loss by a third or more.
file(STRINGS ${WORK}/run/metrics.jsonl lines)
set(val_losses "")
foreach(line ${lines})
  string(JSON event GET "${line}" event)
  if(event STREQUAL "val")
    string(JSON loss GET "${line}" val_loss_dense)
    list(APPEND val_losses ${loss})
  endif()
endforeach()
list(LENGTH val_losses passes)
if(NOT passes EQUAL 4)
  message(FATAL_ERROR "expected validation at iterations 0, 20, 40, 60; got ${passes} passes")
endif()
list(GET val_losses 0 first_val)
list(GET val_losses -1 last_val)
message(STATUS "validation loss ${first_val} before training, ${last_val} after 60 iterations")
if(NOT first_val GREATER 5.0 OR NOT last_val LESS 3.7)
  message(FATAL_ERROR "validation loss did not fall from above 5.0 to below 3.7")
endif()
