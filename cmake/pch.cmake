# Precompiled headers for the stage libraries (issue 14: a fast first build).
# Nearly every translation unit parses the LibTorch headers (ATen, or all of
# <torch/torch.h> through models/native_nets.hpp and metrics/eval_parts.hpp),
# which costs more than compiling our own code. Two headers are compiled once:
#   edi_data   : ATen, OpenCV core/imgproc, nlohmann/json, the STL headers we use
#                (edi_core links neither LibTorch nor OpenCV, so it has no PCH)
#   edi_models : the same plus <torch/torch.h> (models, metrics)
# and every other stage reuses one of them (REUSE_FROM: same compiler flags and
# definitions; GCC checks that with -Winvalid-pch and falls back to parsing
# the headers if they differ, so a mismatch costs time, never correctness).
# -DEDI_PCH=OFF turns this off. Included from the top CMakeLists.txt after the
# stages are defined.
option(EDI_PCH "edi: precompile the LibTorch/OpenCV/STL headers once for all stages" ON)
if(NOT EDI_PCH OR NOT TARGET edi_data)
  return()
endif()

set(edi_pch_common <ATen/ATen.h> <opencv2/core.hpp> <opencv2/imgproc.hpp> <nlohmann/json.hpp>
    <algorithm> <filesystem> <functional> <map> <memory> <set> <sstream> <string> <vector>)
target_precompile_headers(edi_data PRIVATE ${edi_pch_common})
# nlohmann/json is in the system include path for every stage.
set(edi_pch_torch_stages models metrics)
if(TARGET edi_models)
  target_precompile_headers(edi_models PRIVATE ${edi_pch_common} <torch/torch.h>)
endif()
get_property(edi_pch_stages GLOBAL PROPERTY EDI_STAGES)
foreach(t ${edi_pch_stages})
  if(t STREQUAL edi_core OR t STREQUAL edi_data OR t STREQUAL edi_models)
    continue()
  endif()
  string(REPLACE "edi_" "" s ${t})
  if(s IN_LIST edi_pch_torch_stages AND TARGET edi_models)
    target_precompile_headers(${t} REUSE_FROM edi_models)
  else()
    target_precompile_headers(${t} REUSE_FROM edi_data)
  endif()
endforeach()

# ccache caches a compile that uses a precompiled header only with these
# sloppiness settings (and -fpch-preprocess for GCC); without them every such
# compile is a miss. Set for every build tree, not only the scripts' ones.
if(CMAKE_CXX_COMPILER_LAUNCHER MATCHES "ccache")
  set(edi_pch_launcher ${CMAKE_COMMAND} -E env "CCACHE_SLOPPINESS=pch_defines,time_macros"
      ${CMAKE_CXX_COMPILER_LAUNCHER})
  foreach(t ${edi_pch_stages})
    set_property(TARGET ${t} PROPERTY CXX_COMPILER_LAUNCHER ${edi_pch_launcher})
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      target_compile_options(${t} PRIVATE -fpch-preprocess)
    endif()
  endforeach()
endif()
