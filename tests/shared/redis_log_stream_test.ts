import { RedisLogStream } from "../../shared/redis_log_stream.ts";
import { suiteEnv } from "../harness/services.ts";
import { logStreamConformance } from "./log_stream_conformance.ts";

logStreamConformance("RedisLogStream", () => RedisLogStream.connect(suiteEnv().redisUrl));
