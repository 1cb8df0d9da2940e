#include <nifti2_io.h>
