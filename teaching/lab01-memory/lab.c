#include "lab.h"
#include "student.h"
int main(int argc, char **argv)
{
    lab L;
    int rc = lab_begin(&L, argc, argv, "01", "dummy");
    if (rc) return rc;
    int a = student_answer();
    lab_check(&L, "the answer", a == 42, "= 42", "%d", a);
    lab_csv(&L, "answer", a, "");
    return lab_end(&L);
}
