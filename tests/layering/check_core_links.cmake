# cmake -DLINKS=core_links.txt -P check_core_links.cmake: fails when the core
# stage's link libraries (own and interface) name LibTorch, c10 or OpenCV.
file(READ ${LINKS} links)
string(STRIP "${links}" links)
if(links STREQUAL "")
  message(FATAL_ERROR "${LINKS}: empty (expected edi_core's link libraries)")
endif()
foreach(lib ${links})
  string(TOLOWER "${lib}" l)
  if(l MATCHES "torch|c10|opencv")
    message(FATAL_ERROR "edi_core links '${lib}': core must link neither LibTorch nor OpenCV (${LINKS})")
  endif()
endforeach()
message(STATUS "edi_core links: ${links} (no LibTorch, no OpenCV)")
