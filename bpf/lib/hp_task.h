/* The identity of the current process, shared by every program that reports one: with
 * the thread group id, the group leader's start time tells two processes that reused a
 * pid apart (userspace keys its process table by both). */
#ifndef HOSTPROF_BPF_LIB_HP_TASK_H
#define HOSTPROF_BPF_LIB_HP_TASK_H

/* Boot-based start time of the current thread group leader, in ns (start_time on
 * kernels older than 5.5, which lack start_boottime). */
static __always_inline __u64 hp_leader_start_time(void)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();

	if (bpf_core_field_exists(t->start_boottime))
		return BPF_CORE_READ(t, group_leader, start_boottime);
	return BPF_CORE_READ(t, group_leader, start_time);
}

/* Before 5.14 the task state was `volatile long state`; 5.14 renamed it `unsigned int
 * __state`. */
struct task_struct___state {
	long state;
} __attribute__((preserve_access_index));

/* A task's state: 0 runnable (running or preempted), else blocked or dead. */
static __always_inline long hp_task_state(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return BPF_CORE_READ(t, __state);
	return BPF_CORE_READ((struct task_struct___state *)t, state);
}

#endif /* HOSTPROF_BPF_LIB_HP_TASK_H */
