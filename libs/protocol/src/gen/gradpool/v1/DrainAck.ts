// Original file: gradpool/v1/worker.proto


export interface DrainAck {
}

export interface DrainAck__Output {
}
