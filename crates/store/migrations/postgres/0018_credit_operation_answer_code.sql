-- Credit operations: the stored answer's kind is the credit service's code (201 for an
-- answer that made something, 200 for one that changed it), not an HTTP status the store
-- would know of; the values stay as they are.
ALTER TABLE credit_operations RENAME COLUMN http_status TO answer_code;
