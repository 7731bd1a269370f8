# End-to-end SentencePiece: trains a small BPE model on TEXT with Debian's spm_train
# (package sentencepiece), tokenizes TEXT with it through `ratrain tokenize`, and
# checks that the token file records the model's vocabulary and tokenizer name.
# Arguments: RATRAIN, SPM_TRAIN, TEXT, WORK.
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGN}\n${out}${err}")
  endif()
  set(last_output "${out}${err}" PARENT_SCOPE)
endfunction()

run(${SPM_TRAIN} --input=${TEXT} --model_prefix=${WORK}/spm --vocab_size=400 --model_type=bpe
    --bos_id=1 --eos_id=2 --unk_id=0 --pad_id=-1 --minloglevel=2)
run(${RATRAIN} tokenize --input ${TEXT} --output ${WORK}/tokens --tokenizer sentencepiece
    --spm-model ${WORK}/spm.model --val-fraction 0.05)
message(STATUS "${last_output}")
if(NOT last_output MATCHES "with the sentencepiece:spm.model tokenizer \\(vocabulary 400\\)")
  message(FATAL_ERROR "tokenize did not report the SentencePiece vocabulary of 400")
endif()
