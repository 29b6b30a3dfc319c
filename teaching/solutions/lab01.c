#include "lab.h"
#include "../lab01-memory/student.h"
int student_answer(void) { return 42; }
