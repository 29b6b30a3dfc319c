int student_answer(void);
