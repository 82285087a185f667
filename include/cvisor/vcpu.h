/* vcpu.h - the vCPU threads: KVM_RUN loop and exit dispatch. */
#ifndef CVISOR_VCPU_H
#define CVISOR_VCPU_H

#include "cvisor/util.h"

struct vcpu;
struct vm;

/* Signal used to kick a vCPU thread out of KVM_RUN. */
#define VCPU_KICK_SIGNAL SIGUSR1

/* Install the (empty) kick signal handler; once per process. */
int vcpu_install_kick_handler(void) CV_MUST;

/* Start the thread of one vCPU. */
int vcpu_start(struct vcpu *vcpu) CV_MUST;

/* Make the vCPU leave KVM_RUN soon (immediate_exit + signal). */
void vcpu_kick(struct vcpu *vcpu);

#endif
