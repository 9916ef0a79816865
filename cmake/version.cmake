# Writes the generated version.cpp at build time (target edi_version, run by every
# build): `git describe` of the source tree now, so a new commit or an edited tree
# is recorded without re-running cmake. configure_file rewrites the file only when
# its text changes, so an unchanged HEAD recompiles nothing.
# Inputs (-D): EDI_SOURCE_DIR, EDI_VERSION_OUT, EDI_PROJECT_VERSION, EDI_LIBRARIES.
execute_process(COMMAND git describe --always --dirty --tags
                WORKING_DIRECTORY ${EDI_SOURCE_DIR}
                OUTPUT_VARIABLE EDI_GIT_DESCRIBE OUTPUT_STRIP_TRAILING_WHITESPACE
                ERROR_QUIET)
if(NOT EDI_GIT_DESCRIBE)
  set(EDI_GIT_DESCRIBE "unknown")
endif()
set(PROJECT_VERSION ${EDI_PROJECT_VERSION})
configure_file(${EDI_SOURCE_DIR}/cmake/version.cpp.in ${EDI_VERSION_OUT} @ONLY)
