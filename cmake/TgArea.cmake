# Walls between the areas of host/ (ca, enroll, doctor, token, ...): each
# area is one static library whose own sources see every header of its
# folder, while the libraries and programs that link it see only the
# headers the area lists as its public API.

# tg_area_headers(<target> <dir> [PUBLIC <header>...])
# <dir> becomes a PRIVATE include directory of <target>. Each public header
# is linked (a symbolic link, so editing it edits the source) into
# ${CMAKE_BINARY_DIR}/include/<target>/, which becomes the PUBLIC include
# directory: a dependent that includes an internal header of the area fails
# to compile. A listed header that does not exist fails the configure.
function(tg_area_headers target dir)
  cmake_parse_arguments(A "" "" "PUBLIC" ${ARGN})
  set(pub ${CMAKE_BINARY_DIR}/include/${target})
  file(REMOVE_RECURSE ${pub})
  file(MAKE_DIRECTORY ${pub})
  foreach(h IN LISTS A_PUBLIC)
    if(NOT EXISTS ${dir}/${h})
      message(FATAL_ERROR "${target}: public header ${dir}/${h} does not exist; "
                          "fix the list in ${CMAKE_CURRENT_LIST_FILE}")
    endif()
    file(CREATE_LINK ${dir}/${h} ${pub}/${h} SYMBOLIC)
  endforeach()
  target_include_directories(${target} PUBLIC ${pub} PRIVATE ${dir})
endfunction()
